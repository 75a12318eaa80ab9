// Runs the operator as users do: its own process (src/main.ts on Node 24), configured by flags and MXOPS_* variables.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { installCrds as installCrdsWith } from "../controlplane/controlplane.ts";
import { adminKubeconfig } from "./helpers.ts";

const main = join(import.meta.dirname, "..", "..", "src", "main.ts");

export interface OperatorProcess {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exit: Promise<number | null>;
  /** Parsed JSON log lines so far. */
  logs(): { level: string; msg: string; [k: string]: unknown }[];
  stop(): Promise<number | null>;
}

export function startOperator(args: string[], env: Record<string, string> = {}): OperatorProcess {
  const child = spawn(process.execPath, [main, ...args], {
    // Tests run several operators at once: no fixed ports unless a test asks for them.
    env: {
      ...process.env,
      KUBECONFIG: adminKubeconfig(),
      MXOPS_METRICS_BIND_ADDRESS: "0",
      MXOPS_HEALTH_PROBE_BIND_ADDRESS: "0",
      MXOPS_WEBHOOK_PORT: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  let partial = "";
  child.stdout?.on("data", (d: Buffer) => {
    const lines = (partial + d.toString()).split("\n");
    partial = lines.pop() ?? "";
    stdout.push(...lines.filter(Boolean));
  });
  child.stderr?.on("data", (d: Buffer) => stderr.push(d.toString()));
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return {
    child,
    stdout,
    stderr,
    exit,
    logs: () => stdout.map((l) => JSON.parse(l) as { level: string; msg: string }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return await exit;
    },
  };
}

/** Installs (or updates) the mxops CRDs on the run's control plane. */
export async function installCrds(): Promise<void> {
  await installCrdsWith(adminKubeconfig());
}
