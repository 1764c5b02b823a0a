#!/usr/bin/env python3
"""A stand-in orders API for the plugin tutorial (docs/plugin-guide.md): POST /orders takes a JSON
order and an Idempotency-Key header, answers 201 {"id": ...}, 409 for a key it has seen, and 400
for a body without order_id. Prints one line per request. Usage: python3 samples/orders-api.py [PORT]
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

seen = {}


class Orders(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        key = self.headers.get("idempotency-key")
        try:
            order = json.loads(body)
        except ValueError:
            order = {}
        if self.path != "/orders" or not key or "order_id" not in order:
            return self.answer(400, {"error": "POST /orders with an Idempotency-Key and an order_id"})
        if key in seen:
            return self.answer(409, {"id": seen[key], "error": "duplicate"})
        seen[key] = f"ORD-{len(seen) + 1:05d}"
        print(f"{seen[key]} {order['order_id']} store {order.get('store')} total {order.get('total')}", flush=True)
        self.answer(201, {"id": seen[key]})

    def answer(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9300
    print(f"orders API on http://127.0.0.1:{port}/orders", flush=True)
    HTTPServer(("127.0.0.1", port), Orders).serve_forever()
