// `npm run gen`: writes crds/*.yaml from the zod schemas in src/api, and the README's settings table from src/config.ts.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderCrdFiles } from "../src/api/render.ts";
import { settingsMarkdownTable } from "../src/config.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
for (const [file, content] of Object.entries(renderCrdFiles())) {
  writeFileSync(join(root, "crds", file), content);
  console.log(`wrote crds/${file}`);
  // Helm installs a chart's crds/ before its templates; it cannot read files outside the chart.
  if (file !== "kustomization.yaml") writeFileSync(join(root, "charts", "mxops", "crds", file), content);
}

const readmePath = join(root, "README.md");
const readme = readFileSync(readmePath, "utf8");
const begin = "<!-- settings:begin (npm run gen) -->";
const end = "<!-- settings:end -->";
const from = readme.indexOf(begin);
const to = readme.indexOf(end);
if (from < 0 || to < from) throw new Error(`README.md lacks the ${begin} ... ${end} markers`);
writeFileSync(
  readmePath,
  `${readme.slice(0, from + begin.length)}\n${settingsMarkdownTable()}\n${readme.slice(to)}`,
);
console.log("wrote the settings table in README.md");
