#!/usr/bin/env python3
"""cockpit.py: reads a composited cockpit screenshot (gpu-server's
screen.png) by the board file's [cockpit] layout.

  cockpit.py read SCREEN BOARD.toml
      prints one line per area: "<region> frame N" (the stamp read back)
      or "<region> no-signal" or "<region> unreadable"
  cockpit.py check SCREEN BOARD.toml --ref REGION=CMD... [--no-signal REGION...] [--tol T]
      each area must hold a readable stamp, and match the reference of
      that frame within T per channel (default 8) on every pixel. CMD
      renders frame {n} as raw RGBA, bottom row first, into {out}.
      --no-signal: that area must show the "no signal" tile instead.

SCREEN is a PNG as gpu-server writes it (8-bit RGBA) or a binary PPM (P6,
as QEMU's QMP screendump writes it).

The stamp (cockpit_cluster's module comment; ivi.c draws the same): from
(4, 4) of an area, 18 blocks of 8x8 pixels 10 apart on a black band: white,
16 bits most significant first (white = 1), white. The "no signal" tile is
gpu_server::compositor::no_signal."""
import os, shlex, struct, subprocess, sys, tempfile, tomllib, zlib

STAMP_X, STAMP_Y, SIZE, PITCH, BLOCKS = 4, 4, 8, 10, 18


def load_ppm(data):
    # P6 <w> <h> <max> then RGB bytes, top row first.
    fields, pos = [], 2
    while len(fields) < 3:
        while data[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(int(data[pos:end]))
        pos = end
    w, h, _ = fields
    rgb = data[pos + 1:pos + 1 + w * h * 3]
    rgba = bytearray(w * h * 4)
    for c in range(3):
        rgba[c::4] = rgb[c::3]
    rgba[3::4] = b"\xff" * (w * h)
    return w, h, bytes(rgba)


def load_png(path):
    data = open(path, "rb").read()
    if data[:2] == b"P6":
        return load_ppm(data)
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    rows = [raw[y * (w * 4 + 1) + 1:(y + 1) * (w * 4 + 1)] for y in range(h)]
    return w, h, b"".join(rows)  # top row first


def layout(board):
    c = tomllib.load(open(board, "rb"))["cockpit"]
    return c["output"]["width"], c["output"]["height"], c["area"]


def pixel(img, w, x, y):
    i = (y * w + x) * 4
    return img[i:i + 4]


def no_signal(x, y):
    return bytes([255, 0, 255, 255]) if ((x + y) // 16) % 4 == 0 else bytes([40, 40, 40, 255])


def read_area(img, w, a):
    """('frame', n), ('no-signal', None) or ('unreadable', None)."""
    ax, ay = a["x"], a["y"]
    white = lambda i: pixel(img, w, ax + STAMP_X + i * PITCH + SIZE // 2, ay + STAMP_Y + SIZE // 2)[0] > 127
    gap = pixel(img, w, ax + STAMP_X + SIZE + 1, ay + STAMP_Y + SIZE // 2)[0]
    if white(0) and white(BLOCKS - 1) and gap < 64:
        n = 0
        for i in range(1, 17):
            n = n << 1 | int(white(i))
        return "frame", n
    if all(pixel(img, w, ax + x, ay + y) == no_signal(x, y)
           for y in range(0, a["height"], 3) for x in range(0, a["width"], 3)):
        return "no-signal", None
    return "unreadable", None


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("read", "check"):
        sys.exit(__doc__)
    mode, screen, board = sys.argv[1:4]
    refs, tol, args, dark = {}, 8, sys.argv[4:], set()
    while args:
        if args[0] == "--ref" and len(args) > 1:
            name, cmd = args[1].split("=", 1)
            refs[name] = cmd
            args = args[2:]
        elif args[0] == "--no-signal" and len(args) > 1:
            dark.add(args[1])
            args = args[2:]
        elif args[0] == "--tol" and len(args) > 1:
            tol, args = int(args[1]), args[2:]
        else:
            sys.exit(f"bad argument {args[0]}")
    ow, oh, areas = layout(board)
    w, h, img = load_png(screen)
    if (w, h) != (ow, oh):
        print(f"screen is {w}x{h}, the layout says {ow}x{oh}")
        sys.exit(1)
    ok = True
    for a in areas:
        kind, n = read_area(img, w, a)
        name = a["shared"]
        if mode == "read":
            print(f"{name} {kind}" + (f" {n}" if n is not None else ""))
            continue
        if name in dark:
            ok_dark = kind == "no-signal"
            print(f"{name}: {kind}" + (f" {n}" if n is not None else "") +
                  (": no signal as expected" if ok_dark else ": FAIL (no signal expected)"))
            ok = ok and ok_dark
            continue
        if kind != "frame":
            print(f"{name}: {kind}: FAIL")
            ok = False
            continue
        if name not in refs:
            sys.exit(f"no --ref for {name}")
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "ref.rgba")
            cmd = refs[name].replace("{n}", str(n)).replace("{out}", shlex.quote(out))
            r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
            if r.returncode != 0 or not os.path.exists(out):
                print(f"{name}: reference for frame {n} failed: {r.stderr.strip()}")
                ok = False
                continue
            ref = open(out, "rb").read()
        aw, ah = a["width"], a["height"]
        if len(ref) != aw * ah * 4:
            print(f"{name}: reference is {len(ref)} bytes, area needs {aw}x{ah}")
            ok = False
            continue
        worst, bad = 0, 0
        for y in range(ah):
            rrow = ref[(ah - 1 - y) * aw * 4:(ah - y) * aw * 4]  # bottom row first
            i = ((a["y"] + y) * w + a["x"]) * 4
            srow = img[i:i + aw * 4]
            if srow == rrow:
                continue
            for c in range(0, aw * 4, 4):
                d = max(abs(srow[c + k] - rrow[c + k]) for k in range(3))
                worst = max(worst, d)
                bad += d > tol
        res = "ok" if bad == 0 else f"FAIL ({bad} pixels over)"
        print(f"{name}: frame {n}, largest difference {worst} (tolerance {tol}): {res}")
        ok = ok and bad == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
