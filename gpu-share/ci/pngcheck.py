#!/usr/bin/env python3
"""pngcheck.py FILE.png HASH: checks that an RGBA PNG written by gpu-server
holds the frame whose bottom-up FNV-1a hash (as tests/progs/harness.h
computes it) is HASH."""
import struct, sys, zlib

data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w, h = 8, b"", 0, 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if zlib.crc32(kind + body) != struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]:
        sys.exit("bad CRC in " + kind.decode())
    if kind == b"IHDR":
        w, h = struct.unpack(">II", body[:8])
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
raw = zlib.decompress(idat)
rows = [raw[y * (w * 4 + 1) + 1:(y + 1) * (w * 4 + 1)] for y in range(h)]
px = b"".join(reversed(rows))
hsh = 2166136261
for b in px:
    hsh = ((hsh ^ b) * 16777619) & 0xFFFFFFFF
ok = "%08x" % hsh == sys.argv[2]
print("png %dx%d hash %08x, expected %s: %s" % (w, h, hsh, sys.argv[2], "ok" if ok else "MISMATCH"))
sys.exit(0 if ok else 1)
