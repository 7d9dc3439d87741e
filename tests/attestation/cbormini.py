"""A small CBOR codec for the attestation tests (only what NSM documents use: unsigned and negative
integers, byte and text strings, arrays, maps, tags, null/bool), so the tests can take real
documents apart and build new ones without a Python CBOR package."""
import struct


class Tag:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value


def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for add, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | add]) + struct.pack(fmt, n)
    raise ValueError("integer too large")


def dumps(v):
    if v is None:
        return b"\xf6"
    if v is True or v is False:
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, (bytes, bytearray)):
        return _head(2, len(v)) + bytes(v)
    if isinstance(v, str):
        b = v.encode()
        return _head(3, len(b)) + b
    if isinstance(v, list):
        return _head(4, len(v)) + b"".join(dumps(x) for x in v)
    if isinstance(v, dict):
        return _head(5, len(v)) + b"".join(dumps(k) + dumps(x) for k, x in v.items())
    if isinstance(v, Tag):
        return _head(6, v.tag) + dumps(v.value)
    raise TypeError(type(v))


def _load(b, i):
    major, add = b[i] >> 5, b[i] & 31
    i += 1
    if add < 24:
        n = add
    elif add in (24, 25, 26, 27):
        size = 1 << (add - 24)
        n = int.from_bytes(b[i:i + size], "big")
        i += size
    else:
        raise ValueError("unsupported CBOR head at %d" % (i - 1))
    if major == 0:
        return n, i
    if major == 1:
        return -1 - n, i
    if major in (2, 3):
        data = bytes(b[i:i + n])
        if len(data) != n:
            raise ValueError("truncated string")
        return (data if major == 2 else data.decode()), i + n
    if major == 4:
        out = []
        for _ in range(n):
            x, i = _load(b, i)
            out.append(x)
        return out, i
    if major == 5:
        out = {}
        for _ in range(n):
            k, i = _load(b, i)
            out[k], i = _load(b, i)
        return out, i
    if major == 6:
        x, i = _load(b, i)
        return Tag(n, x), i
    if major == 7 and n in (20, 21, 22):
        return {20: False, 21: True, 22: None}[n], i
    raise ValueError("unsupported CBOR item")


def loads(b):
    v, i = _load(b, 0)
    if i != len(b):
        raise ValueError("trailing bytes")
    return v
