// `npm run build`'s second step: dist/main.js and its dependencies as one ES module, dist/mxops.mjs, the file
// `npm start`, the image and the release run. Only what the operator uses is in it (client-node's generated
// API is ~20 MB of heap when loaded whole).
//
// V8 keeps a module's source text for as long as the module lives, as one string: two bytes per character
// if a single character is not Latin-1. So the bundle is ASCII (rolldown escapes non-ASCII characters in
// code; the licence comments it keeps are escaped here) and without its ordinary comments: 3.7 MB of heap
// instead of 9.4 MB.
import { writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { rolldown } from "rolldown";

// undici's index requires all of undici (fetch, WebSocket, caches, mocks, interceptors: 1.1 MB of the bundle's
// 3.0 MB, each of it parsed at every start). The operator takes from it only what this module exports (its
// own client, and client-node's KubeConfig); a name it does not export fails the build, not a request.
// undici's fetch is not among them: client-node's generated API sends its requests with it, and the only way
// into that API left in the bundle is KubeConfig.makeApiClient (a method, so kept), which the operator never
// calls. Should it ever, the stand-in says so at once.
const UNDICI_SLIM = "\0undici-slim";
const NO_FETCH = "undici's fetch is not in the operator's bundle: use the operator's KubeClient";
const undiciSlim = `
import Agent from "undici/lib/dispatcher/agent.js";
import Dispatcher from "undici/lib/dispatcher/dispatcher.js";
import ProxyAgent from "undici/lib/dispatcher/proxy-agent.js";
import api from "undici/lib/api/index.js";
import dispatchers from "undici/lib/global.js";
// What undici's index does: request(), stream() etc. on every dispatcher.
Object.assign(Dispatcher.prototype, api);
export { Agent, Dispatcher, ProxyAgent };
export const { getGlobalDispatcher, setGlobalDispatcher } = dispatchers;
export function fetch() {
  throw new Error("${NO_FETCH}");
}
`;

const bundle = await rolldown({
  input: "dist/main.js",
  platform: "node",
  logLevel: "warn",
  plugins: [
    {
      name: "undici-slim",
      resolveId: (source) => (source === "undici" ? UNDICI_SLIM : null),
      load: (id) => (id === UNDICI_SLIM ? undiciSlim : null),
    },
  ],
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
// An ES-module import of a Node.js built-in reads every one of its exports, getters included: node:http's
// loads node's own copy of undici (for its WebSocket export) and node:fs's its streams, ~25 ms of every start
// for nothing the operator uses. process.getBuiltinModule() hands over the module as require() would, and
// reading a named export then runs only its own getter.
const builtinImport =
  /^import (?:(\w[\w$]*)|\* as (\w[\w$]*)|(\w[\w$]*), \{([^}]*)\}|\{([^}]*)\}) from "([^"]+)";$/gm;
const fromBuiltins = (code: string) =>
  code.replace(builtinImport, (line, dflt, star, dflt2, names2, names, mod) => {
    if (!isBuiltin(mod)) return line;
    const module = `process.getBuiltinModule(${JSON.stringify(mod)})`;
    const destructure = (list: string) => list.replace(/\b([\w$]+) as ([\w$]+)/g, "$1: $2").trim();
    if (dflt || star) return `const ${dflt ?? star} = ${module};`;
    if (dflt2) return `const ${dflt2} = ${module};\nconst { ${destructure(names2)} } = ${dflt2};`;
    return `const { ${destructure(names)} } = ${module};`;
  });
const code = fromBuiltins(chunk.code).replace(
  /[\u0080-\uffff]/g,
  (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
);
writeFileSync("dist/mxops.mjs", code);
