// Stand-in for the NemoClaw OpenClaw plugin entry point (no behaviour; the build only has to produce it).
module.exports = { name: "nemoclaw", version: require("../package.json").version, standin: true };
