#!/usr/bin/env python3
"""Test fixture: Debian's docker-registry on a private loopback port, fronted on PORT by a small
proxy that adds what a plain registry lacks for kiln's tests: bearer-token auth (with its own token
realm) for repositories under private/, and faults for repositories under flaky/ (HTTP 500 on the
first request of each path, and a connection cut halfway through the first blob download).
Usage: registry_front.py PORT DIR   (DIR/backend_port names the registry for pushes)"""
import base64, http.client, http.server, os, socket, subprocess, sys, time

port, data = int(sys.argv[1]), sys.argv[2]
USER, PASSWORD, TOKEN = "kiln", "secret", "t0ken-for-tests"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


backend = free_port()
cfg = os.path.join(data, "registry.yml")
with open(cfg, "w") as f:
    f.write(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {data}/storage
http:
  addr: 127.0.0.1:{backend}
""")
reg = subprocess.Popen(["docker-registry", "serve", cfg])
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", backend), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.1)
with open(os.path.join(data, "backend_port"), "w") as f:
    f.write(str(backend))
faulted = set()


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("front: " + fmt % args + "\n")

    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path
        if path.startswith("/token"):
            want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
            return self.reply(200, ('{"token":"%s","expires_in":300}' % TOKEN).encode(),
                              [("Content-Type", "application/json")])
        if path.startswith("/elsewhere/"):
            # the target of a cross-host redirect: the registry's token must not arrive here
            if self.headers.get("Authorization"):
                return self.reply(400, b"Authorization leaked to another host")
            path = path[len("/elsewhere"):]
        repo = path[len("/v2/"):] if path.startswith("/v2/") else ""
        if repo.startswith("private/") and not self.path.startswith("/elsewhere/") \
                and self.headers.get("Authorization") != "Bearer " + TOKEN:
            scope = "repository:%s:pull" % repo.split("/manifests/")[0].split("/blobs/")[0]
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', [
                ("WWW-Authenticate",
                 f'Bearer realm="http://127.0.0.1:{port}/token",service="kiln-test",scope="{scope}"')])
        if repo.startswith("private/") and "/blobs/" in path and self.headers.get("Host", "").startswith("127."):
            # blobs of private repos live "elsewhere" (like S3 or a CDN): redirect to another host name
            return self.reply(307, b"", [("Location", f"http://localhost:{port}/elsewhere{path}")])
        if repo.startswith("flaky/") and ("500", path) not in faulted:
            faulted.add(("500", path))
            return self.reply(500, b"injected failure")
        conn = http.client.HTTPConnection("127.0.0.1", backend)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization")}
        conn.request(self.command, path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        cut = repo.startswith("flaky/") and "/blobs/" in path and r.status == 200 \
            and ("cut", path) not in faulted and len(body) > 64
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut:
            faulted.add(("cut", path))
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


try:
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Front).serve_forever()
finally:
    reg.kill()
