"""An OpenAI-compatible /v1/chat/completions stand-in for one OpenClaw agent turn (stdlib only, loopback only).

Behaviour (the request/response shapes are the ones OpenClaw's model client sends and parses; citations inside the
npm package @mariozechner/pi-ai@0.57.1, which openclaw@2026.3.11 depends on):
- a request whose messages hold no ``role: "tool"`` message and that offers a tool named ``--tool`` is answered with
  one tool call to it, arguments ``{"command": <--command>}``;
- a request that holds a ``role: "tool"`` message (the tool's output, pi-ai dist/providers/openai-completions.js:553-557)
  is answered with a final text that starts with ``AGENTSEC_FINAL`` and quotes that output;
- anything else (no tools offered) gets a short final text.
Every request body is appended to ``--log`` as one JSON line, so the test reads the tool output exactly as OpenClaw
sent it back to the model.

Streaming: pi-ai always sets ``stream: true`` and ``stream_options.include_usage`` (openai-completions.js:299-306) and
reads ``chunk.choices[0].delta.content`` / ``.delta.tool_calls[]`` / ``.finish_reason`` and ``chunk.usage``
(openai-completions.js:92-215); ``finish_reason`` "tool_calls" maps to a tool-use stop (openai-completions.js:617-630).
The SSE framing (``data: <json>`` lines, ``data: [DONE]``) is the OpenAI Chat Completions streaming format
(https://platform.openai.com/docs/api-reference/chat-streaming). A non-streaming request gets one
``chat.completion`` object (same reference, "The chat completion object").
"""
from __future__ import annotations

import argparse
import http.server
import json
import threading
import time

MODEL_ID = "agentsec-fake-model"


def decide(body, tool, command):
    """(kind, payload) for a request body: ("tool_call", command), ("final", text)."""
    messages = body.get("messages") or []
    tool_outputs = [m.get("content") for m in messages if m.get("role") == "tool"]
    if tool_outputs:
        text = tool_outputs[-1] if isinstance(tool_outputs[-1], str) else json.dumps(tool_outputs[-1])
        return "final", "AGENTSEC_FINAL tool output follows\n" + text
    offered = {(t.get("function") or {}).get("name") for t in body.get("tools") or []}
    if tool in offered:
        return "tool_call", command
    return "final", "AGENTSEC_FINAL no tool was offered"


def _chunk(delta, finish=None, usage=None):
    out = {"id": "chatcmpl-agentsec", "object": "chat.completion.chunk", "created": int(time.time()), "model": MODEL_ID,
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        out["choices"] = []
        out["usage"] = usage
    return out


USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def stream_chunks(kind, payload, tool):
    if kind == "tool_call":
        call = {"index": 0, "id": "call_agentsec_1", "type": "function",
                "function": {"name": tool, "arguments": json.dumps({"command": payload})}}
        yield _chunk({"role": "assistant", "content": None, "tool_calls": [call]})
        yield _chunk({}, finish="tool_calls")
    else:
        yield _chunk({"role": "assistant", "content": payload})
        yield _chunk({}, finish="stop")
    yield _chunk({}, usage=USAGE)


def completion(kind, payload, tool):
    if kind == "tool_call":
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_agentsec_1", "type": "function", "function": {"name": tool, "arguments": json.dumps({"command": payload})}}]}
        finish = "tool_calls"
    else:
        message, finish = {"role": "assistant", "content": payload}, "stop"
    return {"id": "chatcmpl-agentsec", "object": "chat.completion", "created": int(time.time()), "model": MODEL_ID,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": USAGE}


def make_handler(args, lock):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):  # quiet; the JSON log is the record
            pass

        def _send_json(self, status, obj):
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's name
            # GET /v1/models: the OpenAI API reference "List models" shape; neither OpenClaw release called it here.
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send_json(200, {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "agentsec"}]})
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._send_json(400, {"error": {"message": "body is not JSON"}})
                return
            kind, payload = decide(body, args.tool, args.command)
            with lock, open(args.log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"path": self.path, "answer": kind, "body": body}) + "\n")
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                return
            if not body.get("stream"):
                self._send_json(200, completion(kind, payload, args.tool))
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for chunk in stream_chunks(kind, payload, args.tool):
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True, help="JSON-lines file of every request")
    p.add_argument("--tool", default="exec", help="tool name to call (OpenClaw's shell tool is 'exec')")
    p.add_argument("--command", required=True, help="the shell command put into the tool call")
    p.add_argument("--max-seconds", type=float, default=600, help="stop serving after this long (bounded)")
    args = p.parse_args(argv)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args, threading.Lock()))
    server.daemon_threads = True
    timer = threading.Timer(args.max_seconds, server.shutdown)
    timer.daemon = True
    timer.start()
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
