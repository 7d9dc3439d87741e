"""Pieces the runtime tests share: free ports, starting kiln-host/kiln-agent and waiting for their
listeners, echo/hash servers on 127.0.0.1, reading a process's fd count and RSS."""
import asyncio
import hashlib
import os
import socket
import subprocess
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc=None, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise SystemExit("process exited early with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nothing listens on port %d" % port)


def start(binary, directives, extra=(), wait=(), log=None, **kw):
    args = [binary]
    for d in directives:
        args += ["-e", d]
    args += list(extra)
    out = open(log, "ab") if log else subprocess.DEVNULL
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT if log else None, **kw)
    for port in wait:
        wait_port(port, p)
    return p


def stop(p):
    """SIGTERM, then the exit status, which must be 0: the programs stop cleanly, and a sanitizer
    report (a leak at exit, an error) would make it non-zero."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    from kilntest import check
    check(p.returncode == 0, "%s exits 0 on SIGTERM (got %s)" % (os.path.basename(p.args[0]), p.returncode))
    return p.returncode


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kib(pid, field="VmRSS"):
    for line in open("/proc/%d/status" % pid):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    parts = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """An asyncio server on 127.0.0.1 in a thread. mode: 'echo' (send back everything, close after
    EOF), 'hash' (reply with the sha256 hex of everything after EOF), 'reset' (close with RST at
    once), 'http' (one HTTP request: answer 200 with the request head as the body), 'pp' (read a
    PROXY v2 header, answer with the source address it names)."""

    def __init__(self, mode, port=None):
        self.mode, self.port = mode, port or free_port()
        self.requests = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=2048))
        self.server = server
        ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer):
        try:
            await getattr(self, "_" + self.mode)(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _echo(self, reader, writer):
        while True:
            data = await reader.read(262144)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()

    async def _hash(self, reader, writer):
        h, n = hashlib.sha256(), 0
        while True:
            data = await reader.read(1 << 20)
            if not data:
                break
            h.update(data)
            n += len(data)
        writer.write(("%s %d\n" % (h.hexdigest(), n)).encode())
        await writer.drain()

    async def _burst(self, reader, writer):
        # 16 MiB at once, then close: the proxy must deliver all of it to a slow client
        block = bytes(range(256)) * 4096
        for _ in range(16):
            writer.write(block)
        await writer.drain()

    async def _reset(self, reader, writer):
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    async def _http(self, reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(head) + head)
        await writer.drain()

    async def _pp(self, reader, writer):
        pre = await reader.readexactly(16)
        body = await reader.readexactly(int.from_bytes(pre[14:16], "big"))
        self.requests.append(pre + body)
        if pre[13] == 0x11:
            src = socket.inet_ntoa(body[0:4]), int.from_bytes(body[8:10], "big")
            writer.write(("%s %d\n" % src).encode())
        else:
            writer.write(b"local\n")
        rest = await reader.read(100)
        writer.write(rest)
        await writer.drain()

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def roundtrip(port, payload, timeout=60):
    """Connect, send payload, half-close, read everything back."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        out += d
    s.close()
    return out


def proxy_request(port, request, timeout=20):
    """Send a raw request to an HTTP proxy; (status, head, the rest read until close)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(65536)
        if not d:
            break
        data += d
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head.startswith(b"HTTP/1.") else 0
    return s, status, head, rest
