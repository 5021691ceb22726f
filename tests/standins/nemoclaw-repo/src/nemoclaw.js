// agentsec stand-in: the compiled entry point bin/nemoclaw.js loads (NemoClaw src/nemoclaw.ts @db3453b5 is the real
// one). The stand-in's CLI is Python (it shares the stand-ins' state and call log, tests/standins/_standin.py), so
// this entry only hands the command line to dist/nemoclaw.py and passes its exit status on. The Node binary running
// it is passed along: onboarding starts the Ollama auth proxy with it, like upstream's process.execPath
// (src/lib/onboard.ts:1864 @db3453b5).
"use strict";
const { spawnSync } = require("child_process");
const path = require("path");

const python = process.env.AGENTSEC_STANDIN_PYTHON || "python3";
const result = spawnSync(python, [path.join(__dirname, "nemoclaw.py"), ...process.argv.slice(2)], {
  stdio: "inherit",
  env: { ...process.env, AGENTSEC_STANDIN_NODE: process.execPath },
});
if (result.error) {
  console.error(`nemoclaw (agentsec stand-in): cannot run ${python}: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status === null ? 1 : result.status);
