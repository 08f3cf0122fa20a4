"""A stand-in for a deployed worker in tests/deploy.sh, on a free loopback port.

    python3 tests/deploy-target.py PORT_FILE MODE_FILE REQUEST_LOG

Answers GET /health ({"status": "healthy"}), /help and /api/templates with
200. MODE_FILE (read on every request) breaks the new version: `health` makes
/health answer 503 degraded, `smoke` makes the smoke paths answer 500, but
only for requests sent to a version with Cloudflare-Workers-Version-Overrides
(what serves traffic stays healthy, as after a rollback). Every request is
logged as `PATH override=<header> key=<present|absent>`.
"""
import http.server
import json
import sys

port_file, mode_file, request_log = sys.argv[1:4]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        override = self.headers.get("Cloudflare-Workers-Version-Overrides", "")
        key = "present" if self.headers.get("X-API-Key") else "absent"
        with open(request_log, "a") as log:
            log.write(f"{self.path} override={override} key={key}\n")
        try:
            mode = open(mode_file).read().strip()
        except OSError:
            mode = ""
        broken = bool(override)
        if self.path == "/health":
            bad = broken and mode == "health"
            self.answer(503 if bad else 200, {"status": "degraded" if bad else "healthy"})
        elif self.path in ("/help", "/api/templates"):
            bad = broken and mode == "smoke"
            self.answer(500 if bad else 200, {"error": "boom"} if bad else {"ok": True})
        else:
            self.answer(404, {"error": "not found"})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os

os.replace(port_file + ".tmp", port_file)
server.serve_forever()
