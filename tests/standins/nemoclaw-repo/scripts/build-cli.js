// agentsec stand-in for NemoClaw v0.0.21's `npm run build:cli` (`tsc -p tsconfig.src.json`, NemoClaw
// package.json:17 @db3453b5): "compiles" rootDir (src/) into outDir (dist/). The stand-in's sources are a small JS
// launcher and Python modules, so compiling is a checked copy: every file gets a header naming its source and
// digest, dist/ is rebuilt from scratch, and an empty or missing src/ is an error (exit 1) like a failing tsc.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const projectArg = process.argv.indexOf("-p");
const project = path.join(root, projectArg > 0 ? process.argv[projectArg + 1] : "tsconfig.src.json");
const options = JSON.parse(fs.readFileSync(project, "utf-8")).compilerOptions || {};
const rootDir = path.join(root, options.rootDir || "src");
const outDir = path.join(root, options.outDir || "dist");

function sources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "__pycache__" ? [] : sources(full);
    return /\.(js|py|json)$/.test(entry.name) ? [full] : [];
  });
}

if (!fs.existsSync(rootDir)) {
  console.error(`error TS18003: No inputs were found in config file '${project}' (rootDir ${rootDir} is missing).`);
  process.exit(1);
}
const files = sources(rootDir);
if (files.length === 0) {
  console.error(`error TS18003: No inputs were found in config file '${project}'.`);
  process.exit(1);
}
fs.rmSync(outDir, { recursive: true, force: true });
for (const file of files) {
  const rel = path.relative(rootDir, file);
  const text = fs.readFileSync(file, "utf-8");
  const digest = crypto.createHash("sha256").update(text).digest("hex").slice(0, 16);
  const comment = file.endsWith(".py") ? "#" : "//";
  const header = file.endsWith(".json") ? "" : `${comment} compiled by build:cli from src/${rel} (sha256 ${digest})\n`;
  const target = path.join(outDir, rel);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, header + text);
}
fs.writeFileSync(path.join(outDir, ".buildinfo.json"),
  JSON.stringify({ compiler: "agentsec build:cli", node: process.version, files: files.map((f) => path.relative(rootDir, f)).sort() }, null, 2) + "\n");
console.log(`build:cli: compiled ${files.length} files from ${path.relative(root, rootDir)}/ into ${path.relative(root, outDir)}/`);
