#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 reverse proxy for kiln's AWS tests (Python stdlib only).

It forwards every request byte-exact (method, path and query, all headers including Host, so SigV4
signatures stay valid; bodies streamed in 1 MiB pieces) to one upstream (moto or s3rver) and, for
a chosen share of the requests matching --match, injects a fault instead:

  error    answer 503 SlowDown or 500 InternalError (S3 XML error body) after reading the body
  reset    read part of the request body, forward nothing, and reset the connection (RST)
  delay    wait --delay-ms before forwarding
  respond  answer with a configured status/body/headers (e.g. 200 with an <Error> body for
           CompleteMultipartUpload, ExpiredToken, RequestTimeTooSkewed, malformed XML)

--first-n N faults exactly the first N matching requests (deterministic tests); otherwise each
matching request is faulted with probability --rate (seeded by --seed). --kill-after-bytes N resets
every request once N request-body bytes have been forwarded in total (network loss).

Control (never forwarded): GET /__faultproxy/stats (JSON counters: per method, per operation,
faults per kind, body bytes forwarded, mutating calls, requests in flight, the request log) and POST
/__faultproxy/config with a JSON object of the same settings (plus "reset_stats": true).

Usage: faultproxy.py --listen-port PORT (--upstream URL | --upstream-env FILE) [options]
"""
import argparse
import http.client
import json
import random
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 1 << 20
# Operations that change nothing (STS AssumeRole* only hands out session credentials).
MUTATING_PREFIXES = ("Describe", "Get", "List", "Head", "AssumeRole")


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.upstream = args.upstream
        self.config = {
            "kind": args.kind, "rate": args.rate, "first_n": args.first_n, "match": args.match,
            "delay_ms": args.delay_ms, "kill_after_bytes": args.kill_after_bytes,
            "respond": None,
        }
        self.random = random.Random(args.seed)
        self.reset_stats()

    def reset_stats(self):
        self.stats = {"requests": 0, "methods": {}, "operations": {}, "faults": {},
                      "body_bytes": 0, "mutating": 0, "log": [],
                      "in_flight": getattr(self, "stats", {}).get("in_flight", 0)}
        self.matched = 0

    def configure(self, doc):
        with self.lock:
            if doc.pop("reset_stats", False):
                self.reset_stats()
            if "seed" in doc:
                self.random = random.Random(doc.pop("seed"))
            self.config.update(doc)
            if "first_n" in doc or "match" in doc:
                self.matched = 0

    def choose_fault(self, line):
        """The fault kind for this request, or None."""
        with self.lock:
            c = self.config
            if c["kill_after_bytes"] is not None and self.stats["body_bytes"] >= c["kill_after_bytes"]:
                return "reset"
            if c["match"] and not re.search(c["match"], line):
                return None
            self.matched += 1
            if c["first_n"] is not None:
                return c["kind"] if self.matched <= c["first_n"] else None
            if c["rate"] and self.random.random() < c["rate"]:
                return c["kind"] if c["kind"] != "mixed" else self.random.choice(["error", "reset"])
            return None

    def count(self, method, op, mutating, fault, status, path):
        with self.lock:
            s = self.stats
            s["requests"] += 1
            s["methods"][method] = s["methods"].get(method, 0) + 1
            s["operations"][op] = s["operations"].get(op, 0) + 1
            if fault:
                s["faults"][fault] = s["faults"].get(fault, 0) + 1
            if mutating and fault in (None, "delay"):  # delayed requests still reach the server
                s["mutating"] += 1
            if len(s["log"]) < 20000:
                s["log"].append({"method": method, "op": op, "fault": fault, "status": status,
                                 "path": path[:200]})

    def add_in_flight(self, n):
        with self.lock:
            self.stats["in_flight"] += n

    def add_bytes(self, n):
        with self.lock:
            self.stats["body_bytes"] += n


def guess_operation(method, path, headers, form):
    """S3 REST operation, Query Action or JSON target; and whether it changes anything."""
    if form is not None:
        action = urllib.parse.parse_qs(form).get("Action", ["?"])[0]
        return action, not action.startswith(MUTATING_PREFIXES)
    target = headers.get("X-Amz-Target")
    if target:
        op = target.split(".")[-1]
        return op, not op.startswith(MUTATING_PREFIXES)
    parsed = urllib.parse.urlsplit(path)
    q = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    parts = [p for p in parsed.path.split("/") if p]
    if method == "POST" and "uploads" in q:
        op = "CreateMultipartUpload"
    elif method == "PUT" and "partNumber" in q:
        op = "UploadPart"
    elif method == "POST" and "uploadId" in q:
        op = "CompleteMultipartUpload"
    elif method == "DELETE" and "uploadId" in q:
        op = "AbortMultipartUpload"
    elif method == "GET" and "uploadId" in q:
        op = "ListParts"
    elif method == "GET" and "uploads" in q:
        op = "ListMultipartUploads"
    elif method == "HEAD":
        op = "HeadObject" if len(parts) > 1 or headers.get("Host", "").count(".") > 3 else "HeadBucket"
    elif method == "PUT" and q:
        op = "PutBucket" + next(iter(q)).capitalize()
    elif method == "PUT":
        op = "PutObject" if len(parts) > 1 else "CreateBucket"
    elif method == "DELETE":
        op = "DeleteObject" if len(parts) > 1 else "DeleteBucket"
    elif method == "GET" and q and len(parts) <= 1:
        op = "GetBucket" + next(iter(q)).capitalize()
    elif method == "GET":
        op = "GetObject" if len(parts) > 1 else "ListObjects"
    else:
        op = method
    return op, method not in ("GET", "HEAD")


def s3_error(code, message):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>"
            "<RequestId>FAULTPROXY%08d</RequestId></Error>" % (code, message, random.randint(0, 10**8))).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"

    def log_message(self, fmt, *args):  # quiet; the stats tell what happened
        pass

    def do_GET(self):
        self.handle_any()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    # -- control endpoint -------------------------------------------------------------------
    def control(self):
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__faultproxy/config") and self.command == "POST":
            state.configure(json.loads(body or b"{}"))
            out = json.dumps(state.config).encode()
        else:
            with state.lock:
                out = json.dumps(state.stats).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    # -- request body helpers ---------------------------------------------------------------
    def body_length(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return None
        return int(self.headers.get("Content-Length") or 0)

    def read_chunked(self):
        data = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(data)
            data += self.rfile.read(size)
            self.rfile.readline()

    def discard_body(self, length):
        while length > 0:
            got = self.rfile.read(min(CHUNK, length))
            if not got:
                break
            length -= len(got)

    def reset_connection(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def answer(self, status, body, headers=None):
        self.send_response_only(status)
        if "Date" not in (headers or {}):
            self.send_header("Date", self.date_time_string())
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Type" not in (headers or {}):
            self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- forwarding -------------------------------------------------------------------------
    def handle_any(self):
        if self.path.startswith("/__faultproxy/"):
            return self.control()
        state = self.server.state
        state.add_in_flight(1)
        try:
            self.proxy_request(state)
        finally:
            state.add_in_flight(-1)

    def proxy_request(self, state):
        length = self.body_length()
        form = None
        buffered = None
        ctype = self.headers.get("Content-Type", "")
        if length is None:
            buffered = self.read_chunked()
        elif "x-www-form-urlencoded" in ctype and length <= (1 << 20):
            buffered = self.rfile.read(length)
        if buffered is not None and "x-www-form-urlencoded" in ctype:
            form = buffered.decode(errors="replace")
        op, mutating = guess_operation(self.command, self.path, self.headers, form)
        fault = state.choose_fault("%s %s %s" % (self.command, self.path, op))
        if fault == "reset":
            if buffered is None and length:
                self.rfile.read(min(length, 4096))  # part of the body, then cut
            state.count(self.command, op, mutating, fault, 0, self.path)
            return self.reset_connection()
        if fault in ("error", "respond"):
            if buffered is None:
                self.discard_body(length)
            state.count(self.command, op, mutating, fault, 0, self.path)
            if fault == "respond" and state.config.get("respond"):
                r = state.config["respond"]
                headers = dict(r.get("headers") or {})
                if r.get("date_offset_s") is not None:
                    headers["Date"] = time.strftime(
                        "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + r["date_offset_s"]))
                return self.answer(r.get("status", 500), r.get("body", "").encode(), headers)
            if state.random.random() < 0.5:
                return self.answer(503, s3_error("SlowDown", "Please reduce your request rate."))
            return self.answer(500, s3_error("InternalError", "We encountered an internal error."))
        if fault == "delay":
            time.sleep(state.config["delay_ms"] / 1000.0)
        self.forward(length, buffered, op, mutating, fault)

    def forward(self, length, buffered, op, mutating, fault):
        state = self.server.state
        up = urllib.parse.urlsplit(state.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=300)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() == "transfer-encoding" and buffered is not None:
                    continue
                if k.lower() == "content-length" and buffered is not None:
                    continue
                conn.putheader(k, v)
            if buffered is not None:
                conn.putheader("Content-Length", str(len(buffered)))
            conn.endheaders()
            if buffered is not None:
                conn.send(buffered)
                state.add_bytes(len(buffered))
            else:
                left = length
                while left > 0:
                    kill = state.config["kill_after_bytes"]
                    piece = self.rfile.read(min(CHUNK, left))
                    if not piece:  # the client went away mid-body: nothing reaches the server
                        state.count(self.command, op, False, "client-gone", 0, self.path)
                        conn.close()
                        self.close_connection = True
                        return
                    if kill is not None and state.stats["body_bytes"] + len(piece) > kill:
                        state.count(self.command, op, mutating, "reset", 0, self.path)
                        conn.close()
                        return self.reset_connection()
                    conn.send(piece)
                    state.add_bytes(len(piece))
                    left -= len(piece)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as e:
            state.count(self.command, op, mutating, "upstream-error", 0, self.path)
            return self.answer(502, s3_error("InternalError", "upstream: %s" % e))
        finally:
            conn.close()
        state.count(self.command, op, mutating and resp.status < 400, fault, resp.status, self.path)
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() in ("transfer-encoding", "connection", "content-length"):
                continue
            self.send_header(k, v)
        length_header = resp.getheader("Content-Length")
        if self.command == "HEAD" and length_header is not None:
            self.send_header("Content-Length", length_header)
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen-port", type=int, required=True)
    ap.add_argument("--upstream")
    ap.add_argument("--upstream-env", help="an env file with URL=... written by serverctl.py")
    ap.add_argument("--kind", default="error", choices=["error", "reset", "delay", "respond", "mixed"])
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--first-n", type=int)
    ap.add_argument("--match", default="")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--kill-after-bytes", type=int)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not args.upstream and args.upstream_env:
        with open(args.upstream_env) as f:
            env = dict(line.strip().split("=", 1) for line in f if "=" in line)
        args.upstream = env["URL"]
    if not args.upstream:
        ap.error("give --upstream or --upstream-env")
    server = ThreadingHTTPServer(("127.0.0.1", args.listen_port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    print("faultproxy on 127.0.0.1:%d -> %s" % (args.listen_port, args.upstream), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
