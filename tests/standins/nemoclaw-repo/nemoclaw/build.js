// agentsec stand-in for the plugin's `tsc` build (nemoclaw/package.json "build" at NemoClaw v0.0.21): copies
// compilerOptions.rootDir (src/) to outDir (dist/) as tsconfig.json says, with node only; a missing src/ fails.
"use strict";
const fs = require("fs");
const path = require("path");

const options = JSON.parse(fs.readFileSync(path.join(__dirname, "tsconfig.json"), "utf-8")).compilerOptions;
const src = path.join(__dirname, options.rootDir);
const dist = path.join(__dirname, options.outDir);
if (!fs.existsSync(path.join(src, "index.js"))) {
  console.error(`error TS18003: No inputs were found (${src}/index.js is missing).`);
  process.exit(1);
}
fs.rmSync(dist, { recursive: true, force: true });
fs.cpSync(src, dist, { recursive: true });
console.log(`built ${path.relative(__dirname, dist)}/ from ${path.relative(__dirname, src)}/ (node ${process.version})`);
