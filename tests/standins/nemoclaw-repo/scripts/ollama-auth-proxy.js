// agentsec stand-in for NemoClaw v0.0.21's Ollama auth proxy (NemoClaw scripts/ollama-auth-proxy.js @db3453b5), our
// own implementation of the same behaviour: listen on 0.0.0.0:$OLLAMA_PROXY_PORT (default 11435) and forward to
// Ollama on 127.0.0.1:$OLLAMA_BACKEND_PORT (default 11434) only requests that carry `Authorization: Bearer
// $OLLAMA_PROXY_TOKEN` (compared in constant time); `GET /api/tags` passes without it (a health check that lists
// models, not inference). The Authorization and Host headers are not forwarded. No token -> exit 1.
"use strict";
const crypto = require("crypto");
const http = require("http");

const token = process.env.OLLAMA_PROXY_TOKEN;
if (!token) {
  console.error("OLLAMA_PROXY_TOKEN required");
  process.exit(1);
}
const listenPort = Number.parseInt(process.env.OLLAMA_PROXY_PORT || "11435", 10);
const backendPort = Number.parseInt(process.env.OLLAMA_BACKEND_PORT || "11434", 10);
const expected = Buffer.from(`Bearer ${token}`);

function authorized(header) {
  const given = Buffer.from(String(header || ""));
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

const server = http.createServer((req, res) => {
  const healthCheck = req.method === "GET" && req.url === "/api/tags";
  if (!healthCheck && !authorized(req.headers.authorization)) {
    res.writeHead(401, { "Content-Type": "text/plain" });
    res.end("Unauthorized");
    return;
  }
  const headers = { ...req.headers };
  delete headers.authorization;
  delete headers.host;
  const upstream = http.request(
    { hostname: "127.0.0.1", port: backendPort, path: req.url, method: req.method, headers },
    (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on("error", (error) => {
    res.writeHead(502, { "Content-Type": "text/plain" });
    res.end(`Ollama backend error: ${error.message}`);
  });
  req.pipe(upstream);
});

server.on("error", (error) => {
  console.error(`Ollama auth proxy: ${error.message}`);
  process.exit(1);
});
server.listen(listenPort, "0.0.0.0", () => {
  console.log(`Ollama auth proxy listening on 0.0.0.0:${listenPort} -> 127.0.0.1:${backendPort}`);
});
