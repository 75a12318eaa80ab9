// `npm run build`'s second step: dist/main.js and its dependencies as one ES module, dist/mxops.mjs, the file
// `npm start`, the image and the release run. Only what the operator uses is in it (client-node's generated
// API is ~20 MB of heap when loaded whole).
//
// V8 keeps a module's source text for as long as the module lives, as one string: two bytes per character
// if a single character is not Latin-1. So the bundle is ASCII (rolldown escapes non-ASCII characters in
// code; the licence comments it keeps are escaped here) and without its ordinary comments: 3.7 MB of heap
// instead of 9.4 MB.
import { writeFileSync } from "node:fs";
import { rolldown } from "rolldown";

const bundle = await rolldown({
  input: "dist/main.js",
  platform: "node",
  logLevel: "warn",
  // client-node's modules only declare (its generated API: 758 model classes, ~2 MB of code that ran at start
  // and stayed in the heap); its package does not say so, so its unused modules were all kept. Its one
  // module with an effect, the File polyfill for undici, stays.
  treeshake: {
    moduleSideEffects: (id) => !/[\\/]@kubernetes[\\/]client-node[\\/]/.test(id) || /polyfill\.js$/.test(id),
  },
});
const { output } = await bundle.generate({
  format: "esm",
  charset: "ascii",
  comments: { legal: true, annotation: false, jsdoc: false },
});
await bundle.close();
const [chunk] = output;
if (chunk?.type !== "chunk" || output.length !== 1) throw new Error("expected one chunk");
const code = chunk.code.replace(
  /[\u0080-\uffff]/g,
  (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
);
writeFileSync("dist/mxops.mjs", code);
