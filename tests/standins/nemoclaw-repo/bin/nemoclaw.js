#!/usr/bin/env node
// agentsec stand-in for NemoClaw v0.0.21's CLI shim: like NemoClaw bin/nemoclaw.js:6 @db3453b5 it only loads the
// compiled CLI from dist/, so it fails ("Cannot find module '../dist/nemoclaw'") until `npm run build:cli` ran.
require("../dist/nemoclaw");
