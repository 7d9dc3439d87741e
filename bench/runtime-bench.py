#!/usr/bin/env python3
"""Enclave runtime benchmark (not a test): kiln-host's splice against socat doing the same job on
this machine, in one run. TCP stands in for vsock (this machine has no vsock), so both relay
TCP -> TCP. Measured per proxy: throughput of 1 GiB (best of 3), the proxy's CPU seconds per GiB
(user+sys of the whole process tree, from /proc), peak RSS with 1000 connections open (all of
socat's forked processes summed), and sequential connection rate. The egress chain (app ->
kiln-agent on 127.0.0.1:3128 -> kiln-host over a unix socket -> server) is compared with two socat
hops. Usage: bench/runtime-bench.py [BUILD_DIR] [SIZE_MIB]"""
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "runtime"))
from rtlib import Server, free_port, wait_port  # noqa: E402

build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "release")
size = (int(sys.argv[2]) if len(sys.argv) > 2 else 1024) << 20
HOST = os.path.join(build, "lib", "kiln", "kiln-host")
AGENT = os.path.join(build, "lib", "kiln", "kiln-agent")
SOCAT = "/usr/bin/socat"
for b in (HOST, AGENT, SOCAT):
    if not os.path.exists(b):
        sys.exit("missing %s (build kiln; apt-get install socat)" % b)
TICK = os.sysconf("SC_CLK_TCK")


def tree(pid):
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir("/proc/%d/task" % p):
                todo += [int(c) for c in open("/proc/%d/task/%s/children" % (p, t)).read().split()]
        except OSError:
            pass
    return out


def cpu(pids):
    total = 0.0
    for p in pids:
        try:
            f = open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / TICK
        except OSError:
            pass
    return total


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            for line in open("/proc/%d/status" % p):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def sink_server():
    port = free_port()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)

    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=drain, args=(c,), daemon=True).start()

    def drain(c):
        buf = bytearray(1 << 20)
        n = 0
        while True:
            k = c.recv_into(buf)
            if not k:
                break
            n += k
        c.sendall(b"%d\n" % n)
        c.close()
    threading.Thread(target=loop, daemon=True).start()
    return port


def push(port, nbytes, connect=None):
    s = socket.create_connection(("127.0.0.1", port))
    if connect:
        s.sendall(connect)
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1024)
    block = os.urandom(1 << 20)
    t0 = time.time()
    sent = 0
    while sent < nbytes:
        s.sendall(block)
        sent += len(block)
    s.shutdown(socket.SHUT_WR)
    got = int(s.makefile().readline())
    dt = time.time() - t0
    s.close()
    assert got == nbytes, (got, nbytes)
    return dt


def measure(name, procs, port, connect=None, echo_port=None):
    for p in procs:
        time.sleep(0.2)
    pids = [q for p in procs for q in tree(p.pid)]
    c0 = cpu(pids)
    best = min(push(port, size, connect) for _ in range(3))
    pids = [q for p in procs for q in tree(p.pid)]
    cpu_per_gib = (cpu(pids) - c0) / 3 / (size / (1 << 30))
    return {"name": name, "mib_s": size / (1 << 20) / best, "cpu_gib": cpu_per_gib}


def connections(port, n=1000):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"x")
        socks.append(s)
    for s in socks:
        s.recv(1)
    return socks


def rate(port, n=1000):
    t0 = time.time()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"x")
        s.recv(1)
        s.close()
    return n / (time.time() - t0)


def main():
    sink = sink_server()
    echo = Server("echo")
    results = []
    # ingress: TCP -> TCP
    pk, pe_k = free_port(), free_port()
    kh = subprocess.Popen([HOST, "-e", "ingress tcp:127.0.0.1:%d tcp:127.0.0.1:%d" % (pk, sink),
                           "-e", "ingress tcp:127.0.0.1:%d tcp:127.0.0.1:%d" % (pe_k, echo.port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ps, pe_s = free_port(), free_port()
    so = subprocess.Popen([SOCAT, "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr" % ps, "TCP:127.0.0.1:%d" % sink])
    so_e = subprocess.Popen([SOCAT, "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,backlog=2048" % pe_s,
                             "TCP:127.0.0.1:%d" % echo.port])
    for p in (pk, pe_k, ps, pe_s):
        wait_port(p)
    time.sleep(0.3)
    # the two peers interleaved, so machine noise hits both alike
    for rnd in range(2):
        results.append(measure("kiln-host ingress", [kh], pk))
        results.append(measure("socat ingress", [so], ps))
    conn = {}
    for name, proc, port in (("kiln-host", kh, pe_k), ("socat", so_e, pe_s)):
        conn[name] = {"rate": rate(port)}
        socks = connections(port)
        time.sleep(0.5)
        conn[name]["rss"] = rss_kib(tree(proc.pid))
        conn[name]["procs"] = len(tree(proc.pid))
        for s in socks:
            s.close()
    # egress: app -> proxy -> parent -> server
    ap, unix = free_port(), "/tmp/kiln-bench-egress-%d.sock" % os.getpid()
    kh2 = subprocess.Popen([HOST, "-e", "egress-listen unix:" + unix, "-e", "dns files",
                            "-e", "allow 127.0.0.1:%d" % sink], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    ag = subprocess.Popen([AGENT, "-e", "egress-listen tcp:127.0.0.1:%d" % ap, "-e", "egress-parent unix:" + unix,
                           "-e", "logs-parent unix:/nonexistent", "-e", "attestation-listen tcp:127.0.0.1:%d" % free_port(),
                           "-e", "allow 127.0.0.1:%d" % sink, "--nsm-device", "/nonexistent"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sp, sunix = free_port(), "/tmp/kiln-bench-socat-%d.sock" % os.getpid()
    s1 = subprocess.Popen([SOCAT, "UNIX-LISTEN:%s,fork" % sunix, "TCP:127.0.0.1:%d" % sink])
    s2 = subprocess.Popen([SOCAT, "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr" % sp, "UNIX-CONNECT:" + sunix])
    wait_port(ap)
    wait_port(sp)
    connect = b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n" % sink
    for rnd in range(2):
        results.append(measure("kiln-agent + kiln-host egress", [ag, kh2], ap, connect))
        results.append(measure("socat + socat (no CONNECT, no checks)", [s1, s2], sp))
    for p in (kh, so, so_e, kh2, ag, s1, s2):
        p.terminate()
    for p in (kh, so, so_e, kh2, ag, s1, s2):
        p.wait()
    # report: the better of the two rounds per peer
    best = {}
    for r in results:
        b = best.get(r["name"])
        if not b or r["mib_s"] > b["mib_s"]:
            best[r["name"]] = r
    print("%-40s %10s %12s" % ("", "MiB/s", "CPU-s/GiB"))
    for r in best.values():
        print("%-40s %10.0f %12.2f" % (r["name"], r["mib_s"], r["cpu_gib"]))
    ki, so_i = best["kiln-host ingress"], best["socat ingress"]
    ke, so_eg = best["kiln-agent + kiln-host egress"], best["socat + socat (no CONNECT, no checks)"]
    print("ingress: throughput %.2fx socat's, CPU per GiB %.2fx socat's" % (ki["mib_s"] / so_i["mib_s"], ki["cpu_gib"] / so_i["cpu_gib"]))
    print("egress:  throughput %.2fx socat's, CPU per GiB %.2fx socat's" % (ke["mib_s"] / so_eg["mib_s"], ke["cpu_gib"] / so_eg["cpu_gib"]))
    for name, c in conn.items():
        print("%-10s 1000 open connections: RSS %.1f MiB in %d process(es); %.0f connections/s sequential"
              % (name, c["rss"] / 1024, c["procs"], c["rate"]))
    echo.close()


main()
