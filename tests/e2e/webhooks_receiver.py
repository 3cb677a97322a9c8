"""A webhook receiver for the e2e tests: verifies each request with the `standardwebhooks`
package (an implementation independent of tiercare's) and records it as a JSON line in
FOLDER/received.jsonl. FOLDER/mode says how to answer: ok (200, the default), fail (500),
slow (200 after 50 ms). Writes its port to FOLDER/port once it listens.

Usage: python webhooks_receiver.py SECRET FOLDER
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

secret, folder = sys.argv[1], sys.argv[2]
hook = Webhook(secret)
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            with open(os.path.join(folder, "mode")) as f:
                mode = f.read().strip()
        except FileNotFoundError:
            mode = "ok"
        try:
            hook.verify(body, dict(self.headers.items()))
            valid = True
        except WebhookVerificationError:
            valid = False
        if mode == "slow":
            time.sleep(0.05)
        status = 500 if mode == "fail" else 200
        record = {
            "id": self.headers.get("webhook-id"),
            "valid": valid,
            "status": status,
            "content_type": self.headers.get("content-type"),
            "body": json.loads(body),
        }
        with lock:
            with open(os.path.join(folder, "received.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(os.path.join(folder, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(folder, "port.tmp"), os.path.join(folder, "port"))
server.serve_forever()
