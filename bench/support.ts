// What the benchmarks share: their command-line arguments, a bounded-concurrency loop, the built operator.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

const argv = process.argv.slice(2);

/** The value after `--name`, or `dflt`. */
export function arg(name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? dflt) : dflt;
}

export function flag(name: string): boolean {
  return argv.includes(`--${name}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` over `items` with at most `width` at a time. */
export async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** Builds the operator and returns its entry point: benchmarks run it as shipped (the bundle), not the sources. */
export function builtOperator(root: string): string {
  execFileSync("npm", ["run", "build"], { cwd: root, stdio: "ignore" });
  return join(root, "dist", "mxops.mjs");
}

/**
 * The NODE_OPTIONS the shipped Deployment gives the operator (deploy/base/deployment.yaml), so that a
 * benchmark's process has the heap settings it has in a cluster. `--node-options "..."` overrides them.
 */
export function deployedNodeOptions(root: string): string {
  const override = arg("node-options", "\0");
  if (override !== "\0") return override;
  const deployment = parse(readFileSync(join(root, "deploy", "base", "deployment.yaml"), "utf8")) as {
    spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } };
  };
  const env = deployment.spec.template.spec.containers[0]?.env ?? [];
  return env.find((e) => e.name === "NODE_OPTIONS")?.value ?? "";
}
