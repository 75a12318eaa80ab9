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

/** A process of the operator's entry point `main`, its stdout split into lines (JSON log lines). */
export function spawnOperator(opts: {
  main: string;
  kubeconfig: string;
  args: string[];
  env?: Record<string, string>;
  /** Called with each batch of complete stdout lines, and with each stderr chunk. */
  onLines?: (lines: string[]) => void;
  onStderr?: (chunk: string) => void;
}) {
  const child = spawn(process.execPath, [opts.main, ...opts.args], {
    // Tests run several operators at once: no fixed ports unless a test asks for them.
    env: {
      ...process.env,
      KUBECONFIG: opts.kubeconfig,
      MXOPS_METRICS_BIND_ADDRESS: "0",
      MXOPS_HEALTH_PROBE_BIND_ADDRESS: "0",
      MXOPS_WEBHOOK_PORT: "0",
      ...opts.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  let partial = "";
  child.stdout?.on("data", (d: Buffer) => {
    const lines = (partial + d.toString()).split("\n");
    partial = lines.pop() ?? "";
    const complete = lines.filter(Boolean);
    stdout.push(...complete);
    if (complete.length) opts.onLines?.(complete);
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr.push(d.toString());
    opts.onStderr?.(d.toString());
  });
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, stdout, stderr, exit };
}

export function startOperator(args: string[], env: Record<string, string> = {}): OperatorProcess {
  const { child, stdout, stderr, exit } = spawnOperator({ main, kubeconfig: adminKubeconfig(), args, env });
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
