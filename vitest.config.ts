// Three projects: unit tests of pure code (no cluster), integration tests on a real control plane, and the
// fault-injection suite (test/faults: each file owns a control plane it may stop, restart and compact).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["src/**/*.test.ts", "test/controlplane/**/*.test.ts", "scripts/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/integration/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // Two cores: more workers than that only contend with the API server for CPU.
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: "faults",
          include: ["test/faults/**/*.test.ts"],
          globalSetup: ["test/faults/global-setup.ts"],
          // Kill rounds take minutes; one hook may start a control plane and an operator.
          testTimeout: 900_000,
          hookTimeout: 180_000,
          // One file at a time: the faults are timed, and two cores are shared by etcd, the API server,
          // the operator(s) and the test process.
          fileParallelism: false,
        },
      },
    ],
  },
});
