#!/usr/bin/env python3
"""Runs piglit's GLES 2 tests natively and through gpu-share and compares.

The test list is piglit's own: every test of its installed profiles
(opengl, shader, glslparser) whose program is a *_gles2 build, with the
arguments piglit itself uses. Usage:

  piglit.py --lib DIR --server BIN --out FILE.md [--subset N] [--jobs J]

--subset N runs every program test and shader test, and the first N parser
tests in a fixed order (piglit's list order). Exit status is non-zero if a
test's result differs between the two runs and is not listed, with its
reason, in piglit-known.txt next to this script.
"""
import argparse, ast, concurrent.futures, gzip, json, os, re, signal, subprocess, sys, time
import xml.etree.ElementTree as ET

PIGLIT = "/usr/lib/x86_64-linux-gnu/piglit"
TIMEOUT = 60


def tests():
    out = []
    for f in ["opengl.xml.gz", "shader.xml.gz", "glslparser.xml.gz"]:
        root = ET.fromstring(gzip.open(os.path.join(PIGLIT, "tests", f)).read())
        for t in root:
            opts = {o.get("name"): o.get("value") for o in t}
            cmd = ast.literal_eval(opts.get("command", "[]"))
            if not cmd or not cmd[0].endswith("_gles2"):
                continue
            kind = t.get("type")
            if kind in ("gl", "shader"):
                cmd = cmd + ["-auto"] + (["-fbo"] if opts.get("run_concurrent") == "True" else [])
            out.append((t.get("name"), kind, cmd))
    return out


RESULT = re.compile(r'PIGLIT: (\{.*\})')
HIDDEN = re.compile(r'(Function "\w+" not supported|requires unsupported extension \w+|Test requires (GL_\w+))')


def hidden_extension(output):
    """The reason a remoted test skipped, when it is an extension (or one of
    its functions) that gpu-share hides because it does not carry its entry
    points; None otherwise."""
    m = HIDDEN.search(output)
    if not m:
        return None
    return "skips through gpu-share: %s (an extension with entry points gpu-share does not carry)" % m.group(1)


def run(cmd, env):
    try:
        p = subprocess.run([os.path.join(PIGLIT, "bin", cmd[0])] + cmd[1:], cwd=PIGLIT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    text = p.stdout.decode(errors="replace")
    res = None
    for m in RESULT.finditer(text):
        try:
            res = json.loads(m.group(1)).get("result", res)
        except ValueError:
            pass
    if res is None:
        res = "crash" if p.returncode < 0 or p.returncode > 1 else ("pass" if p.returncode == 0 else "fail")
    if p.returncode < 0:
        res = "crash"
    return res, text[-400:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--subset", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()

    known = {}
    kpath = os.path.join(os.path.dirname(os.path.abspath(__file__)), "piglit-known.txt")
    for line in open(kpath):
        line = line.split("#", 1)[0].strip()
        if line:
            name, reason = line.split(":", 1)
            known[name.strip()] = reason.strip()

    all_tests = tests()
    if a.subset is not None:
        parser = [t for t in all_tests if t[1] == "glsl_parser"][: a.subset]
        all_tests = [t for t in all_tests if t[1] != "glsl_parser"] + parser

    sock = "/tmp/tessera-gpu-piglit-%d.sock" % os.getpid()
    log = open(a.out + ".server.log", "w")
    server = subprocess.Popen([a.server, "--socket", sock], stderr=log, stdout=log)
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.05)

    # Native runs get an ES 2.0 context too, as the server's driver does.
    base = dict(os.environ, PIGLIT_PLATFORM="surfaceless_egl", MESA_GLES_VERSION_OVERRIDE="2.0",
                PIGLIT_SOURCE_DIR=PIGLIT)
    base.pop("LD_LIBRARY_PATH", None)
    remote = dict(base, LD_LIBRARY_PATH=a.lib, TESSERA_GPU_SOCKET=sock)

    def one(t):
        n, _, cmd = t
        return n, run(cmd, base), run(cmd, remote)

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
        results = list(ex.map(one, all_tests))
    alive = server.poll() is None
    server.send_signal(signal.SIGTERM)
    server.wait()
    log.close()

    rows, bad, explained = [], [], 0
    totals = {"native": {}, "remote": {}}
    for n, (rn, tn), (rr, tr) in results:
        totals["native"][rn] = totals["native"].get(rn, 0) + 1
        totals["remote"][rr] = totals["remote"].get(rr, 0) + 1
        note = ""
        if rn != rr:
            why = hidden_extension(tr) if rr == "skip" else None
            if why:
                note = why
                explained += 1
            elif n in known:
                note = known[n]
                explained += 1
            else:
                note = "UNEXPLAINED"
                bad.append((n, rn, rr, tr))
        rows.append((n, rn, rr, note))

    kinds = ["pass", "fail", "skip", "warn", "crash", "timeout"]
    with open(a.out, "w") as f:
        f.write("# piglit GLES 2: native Mesa vs gpu-share\n\n")
        f.write("Generated by `gpu-share/ci/piglit.py` (%s, %d tests, %.0f s).\n\n"
                % ("subset of %d parser tests" % a.subset if a.subset is not None else "full set", len(results), time.time() - t0))
        f.write("| run | " + " | ".join(kinds) + " |\n|---|" + "---|" * len(kinds) + "\n")
        for k in ("native", "remote"):
            f.write("| %s | " % ("native" if k == "native" else "gpu-share") + " | ".join(str(totals[k].get(x, 0)) for x in kinds) + " |\n")
        f.write("\nSame result both ways: %d of %d; different and explained: %d; unexplained: %d.\n\n"
                % (len(results) - len(bad) - explained, len(results), explained, len(bad)))
        f.write("| test | native | gpu-share | note |\n|---|---|---|---|\n")
        for r in rows:
            f.write("| %s | %s | %s | %s |\n" % r)
    for n, rn, rr, tr in bad:
        print("MISMATCH %s: native %s, gpu-share %s\n%s" % (n, rn, rr, tr))
    print("piglit: %d tests, native %s, gpu-share %s, %d unexplained differences%s"
          % (len(results), totals["native"], totals["remote"], len(bad), "" if alive else ", SERVER DIED"))
    sys.exit(1 if bad or not alive else 0)


if __name__ == "__main__":
    main()
