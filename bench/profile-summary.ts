// Where an operator's CPU profile (`npm run bench -- --cpu-prof`, in .tmp/prof/) spent its time, by module of the
// bundle: `npm run bench:profile -- FILE [--from S] [--to S] [--bundle dist/mxops.mjs]`. Samples of node's own
// code (streams, http2, timers) count for the nearest bundle module that called them ("node, via undici"), or
// for "node" when none did (socket reads, microtask runs); garbage collection and V8's "(program)" apart.
// Only the main thread is profiled: V8's worker threads (concurrent GC and compilation) are not in it.
import { readFileSync } from "node:fs";
import { arg } from "./support.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
if (!file || file.startsWith("--")) {
  console.error("usage: npm run bench:profile -- FILE [--from S] [--to S] [--bundle dist/mxops.mjs]");
  process.exit(2);
}
const fromUs = Number(arg("from", "0")) * 1e6;
const toUs = Number(arg("to", "Infinity")) * 1e6;
const bundle = arg("bundle", "dist/mxops.mjs");

// The bundler marks where each module starts: "// node_modules/undici/lib/..." or "// dist/runtime/client.js".
const starts: [line: number, module: string][] = [];
readFileSync(bundle, "utf8")
  .split("\n")
  .forEach((text, line) => {
    const m = /^\/\/ (node_modules\/(?:@[^/]+\/)?[^/]+|dist\/\S+)/.exec(text);
    if (m?.[1]) starts.push([line, m[1]]);
  });
const moduleAt = (line: number): string => {
  let lo = 0;
  let hi = starts.length - 1;
  let found = "(bundle start)";
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [start, name] = starts[mid] as [number, string];
    if (start <= line) {
      found = name;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
};

const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const inBundle = (f: CallFrame) => f.url.endsWith(bundle.split("/").at(-1) as string);
const bucketOf = (node: ProfileNode): string => {
  const f = node.callFrame;
  if (inBundle(f)) return moduleAt(f.lineNumber);
  if (f.functionName === "(garbage collector)" || f.functionName === "(program)") return f.functionName;
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const caller = (byId.get(id) as ProfileNode).callFrame;
    if (inBundle(caller)) return `node, via ${moduleAt(caller.lineNumber)}`;
  }
  return "node";
};

const ms = new Map<string, number>();
let busy = 0;
let t = 0;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i] ?? 0;
  if (t < fromUs || t > toUs) continue;
  const node = byId.get(profile.samples[i] as number) as ProfileNode;
  if (node.callFrame.functionName === "(idle)") continue;
  // A sample stands for the time until the next one.
  const us = profile.timeDeltas[i + 1] ?? 0;
  busy += us;
  const bucket = bucketOf(node);
  ms.set(bucket, (ms.get(bucket) ?? 0) + us / 1000);
}
console.log(`main thread busy: ${(busy / 1000).toFixed(0)} ms`);
for (const [bucket, v] of [...ms].sort((a, b) => b[1] - a[1]))
  if (v >= 1)
    console.log(`${v.toFixed(0).padStart(7)} ms ${((v * 100000) / busy).toFixed(1).padStart(5)}%  ${bucket}`);
