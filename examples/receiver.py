"""A subscriber to try callgate with: verifies each delivery's Standard Webhooks signature with the
subscription's ``whsec_`` secret and prints the call change.

    python examples/receiver.py --secret whsec_... [--port 9000]

Answers 204 to a verified delivery, 401 to anything whose signature does not verify (callgate then
retries it on its schedule, and the delivery log shows the 401).
"""

from __future__ import annotations

import argparse
import contextlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def describe(message: dict[str, Any]) -> str:
    data = message.get("data") or {}
    call = data.get("call") or {}
    if message.get("type") == "ping":
        return "ping (the subscription's test delivery)"
    changed = ", ".join(data.get("changed") or [])
    return (
        f"{message.get('type')}: {call.get('vendor')} call {call.get('id')} v{data.get('version')} "
        f"status={call.get('status')} changed=[{changed}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--secret", required=True, help="the subscription's whsec_ secret")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    webhook = Webhook(args.secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                message = webhook.verify(body, headers)
            except WebhookVerificationError as exc:
                print(f"refused {headers.get('webhook-id')}: {exc}", flush=True)
                self.send_response(401)
                self.end_headers()
                return
            print(f"verified {headers['webhook-id']}  {describe(message)}", flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"receiving on http://127.0.0.1:{args.port}/hook", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
