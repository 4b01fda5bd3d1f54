#!/usr/bin/env python3
"""A loopback HTTP server for tests of outbound calls.

Prints its port on the first line, then serves until killed or until its standard input ends (the
test process that started it holds the other end, so the server never outlives it):
  any POST/PUT/PATCH/DELETE/GET /call...  -> counts the call, answers {"ok": true, "calls": N, "echo": <body>}
                                              (GET /fail... answers 500, for retry tests)
  GET /count                              -> {"calls": N, "keys": {idempotency key: count}, "auth": [...],
                                              "cookies": [...]}
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
calls = 0
keys = {}
auth = []
cookies = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        global calls
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if self.path == "/count":
            with lock:
                self.answer(200, {"calls": calls, "keys": keys, "auth": auth, "cookies": cookies})
            return
        with lock:
            calls += 1
            key = self.headers.get("Idempotency-Key") or ""
            keys[key] = keys.get(key, 0) + 1
            auth.append(self.headers.get("Authorization") or "")
            cookies.append(self.headers.get("Cookie") or "")
            n = calls
        if self.path.startswith("/fail"):
            self.answer(500, {"error": "failing on purpose"})
            return
        try:
            echo = json.loads(body) if body else None
        except ValueError:
            echo = body
        self.answer(200, {"ok": True, "calls": n, "echo": echo})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def exit_with_parent():
    sys.stdin.buffer.read()
    os._exit(0)


threading.Thread(target=exit_with_parent, daemon=True).start()
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
