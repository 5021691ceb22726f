// agentsec stand-in for the NemoClaw OpenClaw plugin's entry point (nemoclaw/src/index.ts at v0.0.21). The
// collection's tests need its place in the image (/opt/nemoclaw/dist/index.js), not the plugin's features: it only
// reports the inference selection onboarding wrote into the sandbox (~/.nemoclaw/config.json).
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");

function selection(home = os.homedir()) {
  try {
    return JSON.parse(fs.readFileSync(path.join(home, ".nemoclaw", "config.json"), "utf-8"));
  } catch {
    return null;
  }
}

module.exports = { id: "nemoclaw", standin: true, selection };
