#!/usr/bin/env python3
"""Test fixture: a private Docker daemon (Debian docker.io) for docker-daemon: tests. dockerd runs
without networking set-up (no bridge, no iptables) on a unix socket in DIR with its own data and exec
roots; once it answers _ping, this script listens on PORT so serverctl.py knows it is ready.
Usage: daemon_front.py PORT DIR   (the socket is DIR/docker.sock)"""
import os, signal, socket, subprocess, sys, time

port, data = int(sys.argv[1]), sys.argv[2]
sock = os.path.join(data, "docker.sock")
dockerd = subprocess.Popen([
    "dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false",
    "--host", "unix://" + sock, "--data-root", os.path.join(data, "root"),
    "--exec-root", os.path.join(data, "exec"), "--pidfile", os.path.join(data, "docker.pid"),
    "--storage-driver", "vfs"])



def stop(*_):
    # serverctl signals the whole process group: reap dockerd so it leaves no zombie behind.
    dockerd.terminate()
    try:
        dockerd.wait(timeout=20)
    except subprocess.TimeoutExpired:
        dockerd.kill()
        dockerd.wait()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)


def ping():
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        ok = s.recv(64).split(b" ")[1:2] == [b"200"]
        s.close()
        return ok
    except OSError:
        return False


deadline = time.time() + 50
while not ping():
    if dockerd.poll() is not None or time.time() > deadline:
        sys.exit("dockerd did not start")
    time.sleep(0.2)
ready = socket.socket()
ready.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ready.bind(("127.0.0.1", port))
ready.listen(8)
try:
    while dockerd.poll() is None:
        ready.settimeout(1)
        try:
            ready.accept()[0].close()
        except socket.timeout:
            pass
finally:
    dockerd.terminate()
