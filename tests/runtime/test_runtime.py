#!/usr/bin/env python3
"""kiln-host and kiln-agent on this machine, with TCP and unix sockets standing in for vsock
(same splice engine, same proxy and log code): ingress under load (1000 connections, 1 GiB,
half-close, slow reader, resets, 10k dropped connections, an app that starts late or never),
egress decisions on both ends, the whole app -> agent -> host -> server chain with curl as the
app, PROXY v2, log records (ring while the parent is away), the attestation endpoint without an
NSM device, and bad configuration.

Usage: test_runtime.py HOST_BINARY AGENT_BINARY CASE"""
import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kilntest import check, run_case  # noqa: E402
from rtlib import (Server, free_port, fd_count, proxy_request, roundtrip, rss_kib, start, stop,  # noqa: E402
                   wait_port)

HOST, AGENT, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
SANITIZED = "asan" in os.path.realpath(HOST)
work = tempfile.mkdtemp(prefix="kiln-rt-")


async def many_roundtrips(port, count, size):
    """count concurrent connections each sending size random bytes and reading them back."""
    async def one(i):
        payload = os.urandom(size)
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(payload)
        await w.drain()
        w.write_eof()
        got = await r.read(-1)
        w.close()
        return got == payload
    results = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    return sum(1 for r in results if r is True), [r for r in results if r is not True][:3]


def case_ingress_load():
    echo, hsrv = Server("echo"), Server("hash")
    pe, ph = free_port(), free_port()
    host = start(HOST, ["ingress tcp:127.0.0.1:%d tcp:127.0.0.1:%d" % (pe, echo.port),
                        "ingress tcp:127.0.0.1:%d tcp:127.0.0.1:%d" % (ph, hsrv.port)], wait=[pe, ph])
    time.sleep(0.3)
    fds0 = fd_count(host.pid)
    # 1000 concurrent connections, 64 KiB each way, exact bytes
    ok, errors = asyncio.run(many_roundtrips(pe, 1000, 65536))
    check(ok == 1000, "1000 concurrent connections: %d exact round trips (errors: %s)" % (ok, errors))
    rss = rss_kib(host.pid, "VmHWM")
    print("peak RSS with 1000 connections: %d KiB" % rss)
    if not SANITIZED:
        check(rss < 32 * 1024, "kiln-host peak RSS %d KiB < 32 MiB at 1000 connections" % rss)
    # 1 GiB through, half-close: the server hashes what arrived after our EOF
    h, n, chunk = hashlib.sha256(), 1 << 30, os.urandom(1 << 20)
    s = socket.create_connection(("127.0.0.1", ph))
    for i in range(n // len(chunk)):
        block = chunk[:-8] + i.to_bytes(8, "big")
        h.update(block)
        s.sendall(block)
    s.shutdown(socket.SHUT_WR)
    answer = s.makefile().readline().split()
    s.close()
    check(answer == [h.hexdigest(), str(n)], "1 GiB through ingress arrives exact (got %s)" % answer)
    # slow reader: 32 MiB echoed while the client reads slowly; kiln-host holds no more than a window
    before = rss_kib(host.pid)
    s = socket.create_connection(("127.0.0.1", pe))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    payload = os.urandom(32 << 20)
    sender = __import__("threading").Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
    sender.start()
    got = bytearray()
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
        if len(got) < (8 << 20):
            time.sleep(0.002)
    sender.join()
    s.close()
    grown = rss_kib(host.pid) - before
    check(bytes(got) == payload, "slow reader gets 32 MiB exact")
    if not SANITIZED:
        check(grown < 16 * 1024, "back-pressure: RSS grew %d KiB (< 16 MiB) for a slow reader" % grown)
    # the server sends 16 MiB and closes at once while the client reads slowly: nothing is lost
    burst = Server("burst")
    pb = free_port()
    host3 = start(HOST, ["ingress tcp:127.0.0.1:%d tcp:127.0.0.1:%d" % (pb, burst.port)], wait=[pb])
    s = socket.create_connection(("127.0.0.1", pb))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    time.sleep(1)  # the server has finished and closed long before the client reads
    got = bytearray()
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.close()
    check(bytes(got) == (bytes(range(256)) * 4096) * 16, "a server that closes right after 16 MiB: all %d bytes arrive" % len(got))
    stop(host3)
    burst.close()
    # peer resets
    reset = Server("reset")
    pr = free_port()
    host2 = start(HOST, ["ingress tcp:127.0.0.1:%d tcp:127.0.0.1:%d" % (pr, reset.port)], wait=[pr])
    for _ in range(50):
        try:
            roundtrip(pr, b"x" * 1000, timeout=5)
        except OSError:
            pass
    check(host2.poll() is None, "kiln-host survives 50 peer resets")
    stop(host2)
    reset.close()
    # 10k connections opened and dropped at once
    for _ in range(10000):
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        try:
            c.connect(("127.0.0.1", pe))
        except OSError:
            pass
        c.close()
    check(roundtrip(pe, b"still there") == b"still there", "after 10k dropped connections ingress works")
    deadline = time.time() + 10
    while fd_count(host.pid) != fds0 and time.time() < deadline:
        time.sleep(0.2)
    check(fd_count(host.pid) == fds0, "fd count back to %d (is %d)" % (fds0, fd_count(host.pid)))
    check(host.poll() is None, "kiln-host still running")
    check(stop(host) == 0, "kiln-host exits 0 on SIGTERM")
    echo.close()
    hsrv.close()


def case_ingress_waits_for_app():
    log = os.path.join(work, "host.log")
    app_port, pub = free_port(), free_port()
    host = start(HOST, ["ingress tcp:127.0.0.1:%d tcp:127.0.0.1:%d" % (pub, app_port), "ingress-wait 3"],
                 wait=[pub], log=log)
    # the app starts listening 1 s after the client connected: the connection goes through
    s = socket.create_connection(("127.0.0.1", pub))
    time.sleep(1)
    app = Server("echo", port=app_port)
    s.sendall(b"late app")
    s.shutdown(socket.SHUT_WR)
    s.settimeout(10)
    check(s.recv(100) == b"late app", "a connection made before the app listened reaches it")
    s.close()
    app.close()
    # an app that never listens: the connection is closed after ingress-wait, and it is logged
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", pub))
    s.settimeout(20)
    try:
        data = s.recv(100)
    except ConnectionResetError:
        data = b""
    waited = time.time() - t0
    check(data == b"" and 2.5 < waited < 8, "never-listening app: closed cleanly after %.1f s" % waited)
    stop(host)
    text = open(log).read()
    check("nothing listened on tcp:127.0.0.1:%d within 3 s" % app_port in text,
          "kiln-host logs the app that never listened:\n" + text)


def case_egress_host():
    target = Server("echo")
    http = Server("http")
    pe = free_port()
    host = start(HOST, ["egress-listen tcp:127.0.0.1:%d" % pe, "dns files",
                        "allow 127.0.0.1:%d" % target.port, "allow localhost:%d" % http.port,
                        "allow **.invalid:80", "allow 169.254.0.0/16:80", "allow *.example.com:443",
                        "deny bad.example.com:443"], wait=[pe])

    def connect(dest):
        return proxy_request(pe, b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (dest, dest))

    s, status, head, rest = connect(b"127.0.0.1:%d" % target.port)
    check(status == 200, "CONNECT to an exactly named loopback address: 200 (%r)" % head)
    payload = os.urandom(300000)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    got = rest
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    check(got == payload, "tunnel carries 300 kB exact")
    cases = [
        (b"127.0.0.2:%d" % target.port, 403, b"loopback"),
        (b"localhost:%d" % http.port, 403, b"refused unless an egress entry names 127.0.0.1"),
        (b"169.254.169.254:80", 403, b"instance metadata"),
        (b"bad.example.com:443", 403, b"denied by the egress entry"),
        (b"nowhere.invalid:80", 502, b"does not resolve"),
        (b"10.0.0.1:22", 403, b"not in the egress allow list"),
        (b"api.example.com:80", 403, b"not in the egress allow list"),
    ]
    for dest, want, reason in cases:
        s, status, head, rest = connect(dest)
        s.close()
        check(status == want and reason in rest, "CONNECT %s: %d %r (got %d %r)" % (dest, want, reason, status, rest))
    s, status, head, rest = proxy_request(pe, b"GET http://127.0.0.1:%d/ HTTP/1.1\r\n\r\n" % target.port)
    check(status == 405, "the parent takes CONNECT only (got %d)" % status)
    s, status, head, rest = proxy_request(pe, b"HELLO\r\n\r\n")
    check(status == 400, "garbage: 400 (got %d)" % status)
    s, status, head, rest = proxy_request(pe, b"CONNECT x:1 HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
    check(status == 431, "an oversized head: 431 (got %d)" % status)
    check(host.poll() is None, "kiln-host still running")
    stop(host)
    # with the address named too, localhost works
    host = start(HOST, ["egress-listen tcp:127.0.0.1:%d" % pe, "dns files",
                        "allow localhost:%d" % http.port, "allow 127.0.0.1:%d" % http.port], wait=[pe])
    s, status, head, rest = connect(b"localhost:%d" % http.port)
    check(status == 200, "localhost allowed when 127.0.0.1 is named exactly (got %d %r)" % (status, rest))
    s.close()
    stop(host)
    target.close()
    http.close()


def chain(agent_extra=(), host_extra=(), agent_log=None, host_log=None):
    """kiln-host (parent) and kiln-agent (enclave) wired with unix sockets instead of vsock."""
    he = os.path.join(work, "egress.sock")
    hl = os.path.join(work, "logs.sock")
    app_proxy = free_port()
    host = start(HOST, ["egress-listen unix:" + he, "logs-listen unix:" + hl, "dns files",
                        "log-file " + os.path.join(work, "app.log")] + list(host_extra), log=host_log)
    agent = start(AGENT, ["egress-listen tcp:127.0.0.1:%d" % app_proxy, "egress-parent unix:" + he,
                          "logs-parent unix:" + hl, "attestation-listen tcp:127.0.0.1:%d" % free_port()]
                  + list(agent_extra), extra=["--nsm-device", os.path.join(work, "no-nsm")],
                  wait=[app_proxy], log=agent_log)
    return host, agent, app_proxy


def case_egress_chain():
    target, http = Server("hash"), Server("http")
    allow = ["allow 127.0.0.1:%d" % target.port, "allow 127.0.0.1:%d" % http.port, "allow 127.0.0.1:9"]
    # the parent's list lacks port 9: allowed in the enclave, refused by the parent
    host, agent, ap = chain(agent_extra=allow, host_extra=allow[:2])
    s, status, head, rest = proxy_request(ap, b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n" % target.port)
    check(status == 200, "app -> agent -> host -> server: 200 (%r %r)" % (head, rest))
    data = os.urandom(8 << 20)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    answer = (rest + s.makefile("rb").read()).split()
    check(answer == [hashlib.sha256(data).hexdigest().encode(), b"%d" % len(data)], "8 MiB exact through both proxies")
    # curl as the app, plain http through the absolute-form path
    env = dict(os.environ, http_proxy="http://127.0.0.1:%d" % ap, NO_PROXY="")
    out = subprocess.run(["curl", "-sS", "-m", "20", "http://127.0.0.1:%d/some/path?q=1" % http.port],
                         capture_output=True, env=env, timeout=30)
    check(out.returncode == 0 and out.stdout.startswith(b"GET /some/path?q=1 HTTP/1.1"),
          "curl http:// through the proxy reaches the server in origin form: %r %r" % (out.stdout[:80], out.stderr))
    check(b"Connection: close" in out.stdout and b"Proxy-Connection" not in out.stdout,
          "forwarded head has Connection: close and no proxy headers: %r" % out.stdout)
    out = subprocess.run(["curl", "-sS", "-m", "20", "-o", "/dev/null", "-w", "%{http_code}",
                          "http://127.0.0.1:%d/" % (target.port + 1)], capture_output=True, env=env, timeout=30)
    check(out.stdout == b"403", "curl to a port outside the list: 403 from the agent (%r)" % out.stdout)
    s, status, head, rest = proxy_request(ap, b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n\r\n")
    check(status == 403 and b"parent refused" in rest, "allowed in the enclave, refused by the parent: 403 %r" % rest)
    s, status, head, rest = proxy_request(ap, b"CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n")
    check(status == 403 and b"metadata" in rest, "IMDS refused in the enclave: %r" % rest)
    stop(agent)
    stop(host)
    target.close()
    http.close()


def case_logs():
    hl = os.path.join(work, "logs.sock")
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    r_init, w_init = os.pipe()
    applog = os.path.join(work, "app.log")
    agent = start(AGENT, ["logs-parent unix:" + hl, "egress-listen tcp:127.0.0.1:%d" % free_port(),
                          "egress-parent unix:" + os.path.join(work, "none.sock"),
                          "attestation-listen tcp:127.0.0.1:%d" % free_port()],
                  extra=["--log-fds", "%d,%d,%d" % (r_out, r_err, r_init), "--nsm-device", "/nonexistent"],
                  pass_fds=(r_out, r_err, r_init))
    for fd in (r_out, r_err, r_init):
        os.close(fd)
    # the parent is not listening yet: the agent keeps the lines; the app is never blocked
    t0 = time.time()
    for i in range(20000):
        os.write(w_out, b"line %d of the app\n" % i)
    check(time.time() - t0 < 10, "20000 lines written without blocking while nobody listens")
    os.write(w_err, b"an error line\n")
    os.write(w_init, b"kiln-init: application exited with status 0\n")
    time.sleep(0.5)
    host = start(HOST, ["logs-listen unix:" + hl, "log-file " + applog, "log-file-max 100000"])
    os.write(w_out, b"after the parent came\n")
    deadline = time.time() + 15
    text = ""
    while time.time() < deadline:
        text = open(applog).read() if os.path.exists(applog) else ""
        rotated = applog + ".1"
        if "after the parent came" in text:
            break
        time.sleep(0.2)
    lines = (open(applog + ".1").read() if os.path.exists(applog + ".1") else "") + text
    recs = [l.split(" ", 2) for l in lines.splitlines()]
    check(any(r[1:] == ["stderr", "an error line"] for r in recs), "stderr record arrives")
    check(any(r[1] == "init" and "exited with status 0" in r[2] for r in recs), "init record arrives")
    check(any(r[1:] == ["stdout", "after the parent came"] for r in recs), "a line written after the parent came arrives")
    check(all(len(r) == 3 and r[0].endswith("Z") and r[0][10] == "T" for r in recs), "records are '<RFC 3339> <source> <line>'")
    kept = [int(r[2].split()[1]) for r in recs if r[1] == "stdout" and r[2].startswith("line ")]
    check(kept and kept == sorted(kept) and kept[-1] == 19999, "the newest lines are kept, in order (%d kept)" % len(kept))
    check(os.path.getsize(applog) <= 100000 and os.path.exists(applog + ".1"), "app.log is capped and rotated once")
    for fd in (w_out, w_err, w_init):
        os.close(fd)
    stop(agent)
    stop(host)


def case_attestation_endpoint():
    port = free_port()
    agent = start(AGENT, ["attestation-listen tcp:127.0.0.1:%d" % port, "egress-listen tcp:127.0.0.1:%d" % free_port(),
                          "egress-parent unix:/nonexistent", "logs-parent unix:/nonexistent"],
                  extra=["--nsm-device", os.path.join(work, "nsm")], wait=[port])
    def get(target, method=b"GET"):
        s, status, head, rest = proxy_request(port, method + b" " + target + b" HTTP/1.1\r\n\r\n")
        body = rest + s.makefile("rb").read()
        s.close()
        return status, body
    status, body = get(b"/attestation?nonce=00ff11")
    check(status == 503 and b"no NSM device" in body, "no NSM: 503 with the reason (%d %r)" % (status, body))
    for target, want in [(b"/attestation", 400), (b"/attestation?nonce=zz", 400), (b"/attestation?nonce=" + b"00" * 65, 400),
                         (b"/attestation?nonce=00&evil=1", 400), (b"/other", 404)]:
        status, body = get(target)
        check(status == want, "%r -> %d (got %d %r)" % (target, want, status, body))
    status, body = get(b"/attestation?nonce=00", b"POST")
    check(status == 405, "POST -> 405 (got %d)" % status)
    stop(agent)


def case_proxy_protocol():
    app = Server("pp")
    agent_in, pub = free_port(), free_port()
    agent = start(AGENT, ["ingress tcp:127.0.0.1:%d tcp:127.0.0.1:%d proxy-protocol" % (agent_in, app.port),
                          "egress-listen tcp:127.0.0.1:%d" % free_port(), "egress-parent unix:/nonexistent",
                          "logs-parent unix:/nonexistent", "attestation-listen tcp:127.0.0.1:%d" % free_port()],
                  extra=["--nsm-device", "/nonexistent"], wait=[agent_in])
    host = start(HOST, ["ingress tcp:127.0.0.1:%d tcp:127.0.0.1:%d proxy-protocol" % (pub, agent_in)], wait=[pub])
    s = socket.create_connection(("127.0.0.1", pub))
    mine = s.getsockname()
    s.sendall(b"hello")
    s.shutdown(socket.SHUT_WR)
    s.settimeout(10)
    got = s.makefile("rb").read()
    check(got == b"%s %d\nhello" % (mine[0].encode(), mine[1]), "the app sees the client's address via PROXY v2: %r" % got)
    # straight to the agent without a header: closed, the app never sees an unframed stream
    before = len(app.requests)
    out = roundtrip(agent_in, b"GET / HTTP/1.1\r\n\r\n", timeout=10)
    check(out == b"" and len(app.requests) == before, "no PROXY v2 header: closed before the app (%r)" % out)
    stop(host)
    stop(agent)
    app.close()


def case_bad_config():
    conf = os.path.join(work, "host.conf")
    with open(conf, "w") as f:
        f.write("# kiln\ningress tcp:0.0.0.0:80 vsock:16:8080\nallow api.example.com:443\nallow exa mple:1\n")
    p = subprocess.run([HOST, "-c", conf, "--check"], capture_output=True, text=True)
    check(p.returncode == 2 and "host.conf:4" in p.stderr, "a bad line is named with file:line: %r" % p.stderr)
    for bad, what in [("allow api.example.com", "HOST:PORT"), ("allow a.com:70000", "port"),
                      ("allow 10.0.0.0/33:1", "not a host name"), ("ingress tcp:1.2.3.4:99999 vsock:1:1", "port"),
                      ("ingress vsock:x:1 tcp:127.0.0.1:1", "CID"), ("frobnicate 1", "not a directive")]:
        p = subprocess.run([HOST, "-e", bad, "--check"], capture_output=True, text=True)
        check(p.returncode == 2 and what in p.stderr, "%r -> exit 2 naming %r: %r" % (bad, what, p.stderr))
    p = subprocess.run([HOST, "-e", "allow **.amazonaws.com:443", "-e", "allow [fd00::/8]:*", "--check"],
                       capture_output=True, text=True)
    check(p.returncode == 0 and "2 allow" in p.stdout, "valid entries pass --check: %r %r" % (p.stdout, p.stderr))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    p = subprocess.run([HOST, "-e", "ingress tcp:127.0.0.1:%d tcp:127.0.0.1:2" % taken.getsockname()[1]],
                       capture_output=True, text=True, timeout=10)
    taken.close()
    check(p.returncode == 1 and "cannot listen" in p.stderr, "a port it cannot bind: exit 1 naming it (%r)" % p.stderr)


run_case(globals(), CASE, work)
