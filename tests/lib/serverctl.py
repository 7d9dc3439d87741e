#!/usr/bin/env python3
"""Start and stop servers for ctest fixtures on 127.0.0.1 with a free port.

start: picks a free port, runs the command (with {port}, {dir}, {host} replaced) in its own process
group, waits until the port accepts connections, and writes NAME.env (PORT, URL, PID, DIR) into
--dir so tests can find it. stop: kills the process group and removes the env file.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def start(args):
    os.makedirs(args.dir, exist_ok=True)
    data_dir = os.path.join(args.dir, args.name + ".data")
    os.makedirs(data_dir, exist_ok=True)
    port = free_port()
    cmd = [c.format(port=port, dir=data_dir, host="127.0.0.1") for c in args.command]
    log = open(os.path.join(args.dir, args.name + ".log"), "wb")
    env = dict(os.environ)
    for kv in args.env or []:
        k, _, v = kv.partition("=")
        env[k] = v.format(port=port, dir=data_dir, host="127.0.0.1")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=env)
    if not wait_port(port, proc, args.timeout):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()
        sys.stderr.write("server %s did not start; its log:\n" % args.name)
        with open(os.path.join(args.dir, args.name + ".log"), "rb") as f:
            sys.stderr.write(f.read()[-4000:].decode(errors="replace"))
        return 1
    with open(os.path.join(args.dir, args.name + ".env"), "w") as f:
        f.write("PORT=%d\nURL=http://127.0.0.1:%d\nPID=%d\nDIR=%s\n" % (port, port, proc.pid, data_dir))
    print("%s listening on 127.0.0.1:%d (pid %d)" % (args.name, port, proc.pid))
    return 0


def stop(args):
    env_file = os.path.join(args.dir, args.name + ".env")
    try:
        with open(env_file) as f:
            values = dict(line.strip().split("=", 1) for line in f if "=" in line)
    except FileNotFoundError:
        return 0
    pid = int(values.get("PID", "0"))
    if pid > 0:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.1)
    os.unlink(env_file)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, allow_abbrev=False)
    p.add_argument("action", choices=["start", "stop"])
    p.add_argument("--dir", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--env", action="append", help="KEY=VALUE for the server's environment")
    argv = sys.argv[1:]
    if "--" in argv:  # "ACTION [options] -- command...": everything after "--" is the command
        i = argv.index("--")
        args = p.parse_args(argv[:i])
        args.command = argv[i + 1:]
    else:  # "[options] ACTION command...": what is not an option of ours is the command
        args, args.command = p.parse_known_args(argv)
    return start(args) if args.action == "start" else stop(args)


if __name__ == "__main__":
    sys.exit(main())
