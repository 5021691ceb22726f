// Stand-in for the plugin's TypeScript build: copies src/index.js to dist/index.js with node only.
const fs = require("fs");
const path = require("path");

const dist = path.join(__dirname, "dist");
fs.mkdirSync(dist, { recursive: true });
const source = fs.readFileSync(path.join(__dirname, "src", "index.js"), "utf-8");
fs.writeFileSync(path.join(dist, "index.js"), `// built by build.js (node ${process.version})\n${source}`);
console.log(`built ${path.join(dist, "index.js")}`);
