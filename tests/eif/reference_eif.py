#!/usr/bin/env python3
"""An independent EIF writer and PCR calculator written from the format description (stdlib only),
used to check kiln's writer byte for byte.

  reference_eif.py write OUT KERNEL CMDLINE_FILE METADATA_FILE RAMDISK... -> prints PCRs as JSON
  reference_eif.py pcrs KERNEL CMDLINE_FILE RAMDISK...                     -> prints PCRs as JSON
"""
import hashlib
import json
import struct
import sys
import zlib

MAGIC = b".eif"
KERNEL, CMDLINE, RAMDISK, SIGNATURE, METADATA = 1, 2, 3, 4, 5


def pcr(chunks):
    inner = hashlib.sha384()
    for c in chunks:
        inner.update(c)
    return hashlib.sha384(b"\0" * 48 + inner.digest()).hexdigest()


def measurements(kernel, cmdline, ramdisks):
    return {
        "HashAlgorithm": "Sha384 { ... }",
        "PCR0": pcr([kernel, cmdline] + ramdisks),
        "PCR1": pcr([kernel, cmdline, ramdisks[0]]),
        "PCR2": pcr(ramdisks[1:]),
    }


def build(kernel, cmdline, metadata, ramdisks, arch_flag=0):
    sections = [(KERNEL, kernel), (CMDLINE, cmdline), (METADATA, metadata)] + [(RAMDISK, r) for r in ramdisks]
    offsets, sizes = [], []
    pos = 548
    for _, data in sections:
        offsets.append(pos)
        sizes.append(len(data))
        pos += 12 + len(data)
    pad = lambda xs: xs + [0] * (32 - len(xs))
    header = MAGIC + struct.pack(">HHQQHH", 4, arch_flag, 1 << 30, 2, 0, len(sections))
    header += struct.pack(">32Q", *pad(offsets)) + struct.pack(">32Q", *pad(sizes)) + struct.pack(">I", 0)
    assert len(header) == 544
    body = b"".join(struct.pack(">HHQ", t, 0, len(d)) + d for t, d in sections)
    crc = zlib.crc32(header + body) & 0xFFFFFFFF
    return header + struct.pack(">I", crc) + body


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    if sys.argv[1] == "write":
        out, kernel, cmdline, metadata = sys.argv[2:6]
        ramdisks = [read(p) for p in sys.argv[6:]]
        data = build(read(kernel), read(cmdline), read(metadata), ramdisks)
        with open(out, "wb") as f:
            f.write(data)
        print(json.dumps(measurements(read(kernel), read(cmdline), ramdisks)))
    elif sys.argv[1] == "pcrs":
        print(json.dumps(measurements(read(sys.argv[2]), read(sys.argv[3]), [read(p) for p in sys.argv[4:]])))
    else:
        sys.exit("usage: see the docstring")


if __name__ == "__main__":
    main()
