"""MessagePack for session values, in the standard library: the exact
exchange format for lists and dicts (JSON has no bytes and would turn them
into text). Only the session model: nil, bool, int64, float, str, bin,
array, map with str keys."""
import math
import struct

_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
MAX_DEPTH = 24


def pack(value):
    out = bytearray()
    _pack(value, out, 0)
    return bytes(out)


def _pack(v, out, depth):
    if depth > MAX_DEPTH:
        raise ValueError("session values nest at most 24 levels")
    if v is None:
        out.append(0xC0)
    elif v is True or v is False:
        out.append(0xC3 if v else 0xC2)
    elif isinstance(v, int):
        if not _INT64_MIN <= v <= _INT64_MAX:
            raise OverflowError("session integers are 64-bit")
        out += b"\xd3" + struct.pack(">q", v)
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("session floats must be finite")
        out += b"\xcb" + struct.pack(">d", v)
    elif isinstance(v, str):
        raw = v.encode("utf-8")
        out += b"\xdb" + struct.pack(">I", len(raw)) + raw
    elif isinstance(v, (bytes, bytearray, memoryview)):
        raw = bytes(v)
        out += b"\xc6" + struct.pack(">I", len(raw)) + raw
    elif isinstance(v, (list, tuple)):
        out += b"\xdd" + struct.pack(">I", len(v))
        for item in v:
            _pack(item, out, depth + 1)
    elif isinstance(v, dict):
        out += b"\xdf" + struct.pack(">I", len(v))
        for key, item in v.items():
            if not isinstance(key, str):
                raise TypeError("dict keys in a session are str")
            _pack(key, out, depth + 1)
            _pack(item, out, depth + 1)
    else:
        raise TypeError(f"{type(v).__name__} cannot be stored in a session")


def unpack(data):
    value, end = _unpack(memoryview(data), 0)
    if end != len(data):
        raise ValueError("trailing bytes after a MessagePack value")
    return value


def _unpack(b, i):
    t = b[i]
    i += 1
    if t <= 0x7F:
        return t, i
    if t >= 0xE0:
        return t - 0x100, i
    if 0x80 <= t <= 0x8F:
        return _map(b, i, t & 0x0F)
    if 0x90 <= t <= 0x9F:
        return _array(b, i, t & 0x0F)
    if 0xA0 <= t <= 0xBF:
        n = t & 0x1F
        return bytes(b[i:i + n]).decode("utf-8"), i + n
    if t == 0xC0:
        return None, i
    if t in (0xC2, 0xC3):
        return t == 0xC3, i
    fixed = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
             0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
    if t in fixed:
        fmt = fixed[t]
        size = struct.calcsize(fmt)
        return struct.unpack_from(fmt, b, i)[0], i + size
    sizes = {0xC4: ">B", 0xC5: ">H", 0xC6: ">I", 0xD9: ">B", 0xDA: ">H", 0xDB: ">I",
             0xDC: ">H", 0xDD: ">I", 0xDE: ">H", 0xDF: ">I"}
    if t in sizes:
        fmt = sizes[t]
        n = struct.unpack_from(fmt, b, i)[0]
        i += struct.calcsize(fmt)
        if t <= 0xC6:
            return bytes(b[i:i + n]), i + n
        if t <= 0xDB:
            return bytes(b[i:i + n]).decode("utf-8"), i + n
        if t <= 0xDD:
            return _array(b, i, n)
        return _map(b, i, n)
    raise ValueError(f"MessagePack type 0x{t:02x} is not in the session model")


def _array(b, i, n):
    out = []
    for _ in range(n):
        item, i = _unpack(b, i)
        out.append(item)
    return out, i


def _map(b, i, n):
    out = {}
    for _ in range(n):
        key, i = _unpack(b, i)
        out[key], i = _unpack(b, i)
    return out, i
