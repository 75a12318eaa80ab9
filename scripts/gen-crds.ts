// `npm run gen`: writes crds/*.yaml from the zod schemas in src/api (never edit crds/ by hand).
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderCrdFiles } from "../src/api/render.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
for (const [file, content] of Object.entries(renderCrdFiles())) {
  writeFileSync(join(root, "crds", file), content);
  console.log(`wrote crds/${file}`);
}
