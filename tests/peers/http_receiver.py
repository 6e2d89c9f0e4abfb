#!/usr/bin/env python3
"""An HTTP receiver for OneKey's tests: stands in for another system's webhook endpoint or an HTTP
SMS gateway. It records every request (method, path, headers, body) and answers the first
`--fail-first N` requests with `--fail-status` (default 500), the rest with 200 and a JSON body
carrying a message id. The test reads what arrived from `GET /_requests` and changes the failures
with `POST /_config {"fail_first": N, "fail_status": S}`.

Usage: http_receiver.py [--port 0] [--fail-first 0] [--fail-status 500]
Prints one JSON line {"port": p} when listening.
"""

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"requests": [], "fail_first": 0, "fail_status": 500, "answered": 0}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_requests":
            with LOCK:
                return self.reply(200, STATE["requests"])
        self.reply(404, {"error": "no such route"})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        if self.path == "/_config":
            with LOCK:
                STATE.update(json.loads(body or "{}"))
                return self.reply(200, {k: STATE[k] for k in ("fail_first", "fail_status")})
        with LOCK:
            n = STATE["answered"]
            STATE["answered"] += 1
            failing = n < STATE["fail_first"]
            status = STATE["fail_status"] if failing else 200
            STATE["requests"].append({
                "method": "POST",
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
                "status": status,
            })
        if failing:
            return self.reply(status, {"error": "failing on purpose"})
        self.reply(200, {"ok": True, "messageId": f"r{n}"})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-status", type=int, default=500)
    a = p.parse_args()
    STATE["fail_first"] = a.fail_first
    STATE["fail_status"] = a.fail_status
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
