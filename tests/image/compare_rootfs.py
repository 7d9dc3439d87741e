#!/usr/bin/env python3
"""Compare the rootfs/ part of a kiln newc cpio with a directory tree (e.g. `umoci unpack`):
file list, types, modes, owners, symlink targets, file contents and hard-link groups.
Usage: compare_rootfs.py ROOTFS.cpio DIR [--ignore PATH]...  Exit 1 with a diff on mismatch."""
import hashlib, os, stat, sys


def read_cpio(path):
    entries = {}
    with open(path, "rb") as f:
        data = f.read()
    off = 0
    while True:
        hdr = data[off:off + 110]
        if hdr[:6] != b"070701":
            raise SystemExit(f"{path}: bad newc magic at {off}")
        fields = [int(hdr[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        ino, mode, uid, gid, nlink, mtime, size = fields[:7]
        namesize = fields[11]
        name = data[off + 110:off + 110 + namesize - 1].decode()
        off += 110 + namesize
        off += (-off) % 4
        body = data[off:off + size]
        off += size
        off += (-off) % 4
        if name == "TRAILER!!!":
            return entries
        entries[name] = dict(ino=ino, mode=mode, uid=uid, gid=gid, nlink=nlink, mtime=mtime, body=body)


def describe_cpio(entries):
    out, groups = {}, {}
    for name, e in entries.items():
        if not name.startswith("rootfs/"):
            continue
        rel = name[len("rootfs/"):]
        m = e["mode"]
        if stat.S_ISREG(m) and e["nlink"] > 1:
            groups.setdefault(e["ino"], []).append(rel)
        out[rel] = [m, e["uid"], e["gid"], e["body"] if stat.S_ISLNK(m) else None]
    for ino, names in groups.items():
        body = [entries["rootfs/" + n]["body"] for n in names if entries["rootfs/" + n]["body"]]
        for n in names:
            out[n].append(tuple(sorted(names)))
            out[n][3] = hashlib.sha256(body[0] if body else b"").hexdigest()
    for rel, v in out.items():
        if stat.S_ISREG(v[0]) and len(v) == 4:
            v[3] = hashlib.sha256(entries["rootfs/" + rel]["body"]).hexdigest()
            v.append(None)
        elif len(v) == 4:
            v.append(None)
    return out


def describe_dir(root):
    out, inodes = {}, {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            m = st.st_mode
            body = None
            if stat.S_ISLNK(m):
                body = os.readlink(p).encode()
            elif stat.S_ISREG(m):
                with open(p, "rb") as f:
                    body = hashlib.sha256(f.read()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            out[rel] = [m, st.st_uid, st.st_gid, body, None]
    for names in inodes.values():
        for n in names:
            out[n][4] = tuple(sorted(names))
    return out


def main():
    cpio, d = sys.argv[1], sys.argv[2]
    ignore = set()
    args = sys.argv[3:]
    while args:
        if args[0] == "--ignore":
            ignore.add(args[1])
            args = args[2:]
        else:
            raise SystemExit("unknown argument " + args[0])
    a = {k: v for k, v in describe_cpio(read_cpio(cpio)).items() if k not in ignore}
    b = {k: v for k, v in describe_dir(d).items() if k not in ignore}
    bad = 0
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            print(f"{k}: kiln={a.get(k)} dir={b.get(k)}")
            bad += 1
    print(f"compared {len(a)} kiln entries with {len(b)} directory entries: {bad} differences")
    sys.exit(1 if bad else 0)


main()
