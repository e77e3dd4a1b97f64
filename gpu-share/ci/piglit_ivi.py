#!/usr/bin/env python3
"""The piglit subset of the IVI VM (piglit-ivi.txt next to this script):
its results on the host, and the comparison with the IVI's console.

  piglit_ivi.py host --lib DIR --server BIN --out RESULTS
      runs the subset natively and through gpu-share (the host socket
      transport, as piglit.py does) and writes RESULTS: one line per test,
      `name<TAB>native<TAB>gpu-share`.
  piglit_ivi.py compare RESULTS CONSOLE
      reads the IVI's `tessera-ivi: piglit RESULT NAME` lines from a console
      log (the hypervisor's `ivi | ` prefix or not) and compares each with
      the host's gpu-share result. Exit status 1 on any difference, a test
      missing from the console, or no `piglit done` line.
  piglit_ivi.py self-test
      the comparison on made-up consoles: equal passes, a changed result,
      a missing test and an unfinished run fail.
"""
import os, re, sys

HERE = os.path.dirname(os.path.abspath(__file__))
SUBSET = os.path.join(HERE, "piglit-ivi.txt")
LINE = re.compile(r"tessera-ivi: piglit (pass|fail|skip|warn|crash|timeout) (.+?)\r?$")
DONE = re.compile(r"tessera-ivi: piglit done: (\d+) tests in (\d+) s")


def subset():
    out = []
    for line in open(SUBSET):
        if not line.strip() or line.startswith("#"):
            continue
        name, cmd = line.rstrip("\n").split("\t", 1)
        out.append((name, cmd.split()))
    return out


def host(lib, server, out):
    import signal, subprocess, time
    sys.path.insert(0, HERE)
    import piglit
    sock = "/tmp/tessera-gpu-piglit-ivi-%d.sock" % os.getpid()
    log = open(out + ".server.log", "w")
    srv = subprocess.Popen([server, "--socket", sock], stderr=log, stdout=log)
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    base = dict(os.environ, PIGLIT_PLATFORM="surfaceless_egl", MESA_GLES_VERSION_OVERRIDE="2.0",
                PIGLIT_SOURCE_DIR=piglit.PIGLIT)
    base.pop("LD_LIBRARY_PATH", None)
    remote = dict(base, LD_LIBRARY_PATH=lib, TESSERA_GPU_SOCKET=sock)
    t0 = time.time()
    rows = []
    for name, cmd in subset():
        rows.append((name, piglit.run(cmd, base)[0], piglit.run(cmd, remote)[0]))
    alive = srv.poll() is None
    srv.send_signal(signal.SIGTERM)
    srv.wait()
    with open(out, "w") as f:
        for r in rows:
            f.write("%s\t%s\t%s\n" % r)
    print("piglit-ivi host: %d tests in %.1f s; gpu-share: %s%s" % (
        len(rows), time.time() - t0,
        ", ".join("%s %d" % (k, sum(1 for r in rows if r[2] == k)) for k in sorted({r[2] for r in rows})),
        "" if alive else "; SERVER DIED"))
    return 0 if alive else 1


def compare_text(results_text, console):
    """Returns (problems, summary)."""
    want = {}
    for line in results_text.splitlines():
        if line.strip():
            name, _native, remote = line.split("\t")
            want[name] = remote
    got = {}
    for line in console.splitlines():
        m = LINE.search(line)
        if m:
            got[m.group(2)] = m.group(1)
    problems = []
    for name, res in want.items():
        if name not in got:
            problems.append("%s: host %s, not run in the IVI" % (name, res))
        elif got[name] != res:
            problems.append("%s: host %s, IVI %s" % (name, res, got[name]))
    for name in got:
        if name not in want:
            problems.append("%s: run in the IVI, not on the host" % name)
    done = DONE.search(console)
    if not done:
        problems.append("the IVI never said `piglit done`")
    same = sum(1 for n in want if got.get(n) == want[n])
    summary = "piglit-ivi: %d of %d tests the same in the IVI as on the host%s" % (
        same, len(want), "; IVI run %s s" % done.group(2) if done else "")
    return problems, summary


def self_test():
    results = "a b\tpass\tpass\nc\tfail\tfail\n"
    good = "ivi | tessera-ivi: piglit pass a b\r\nivi | tessera-ivi: piglit fail c\nivi | tessera-ivi: piglit done: 2 tests in 5 s\n"
    cases = [
        (good, 0),
        (good.replace("piglit fail c", "piglit pass c"), 1),
        (good.replace("ivi | tessera-ivi: piglit fail c\n", ""), 1),
        (good.replace("piglit done", "piglit gone"), 1),
    ]
    for console, n in cases:
        problems, _ = compare_text(results, console)
        if len(problems) != n:
            print("self-test FAILED on %r: %s" % (console, problems))
            return 1
    print("piglit-ivi self-test: 4 cases right")
    return 0


def main(argv):
    if argv[:1] == ["host"]:
        import argparse
        ap = argparse.ArgumentParser()
        ap.add_argument("--lib", required=True)
        ap.add_argument("--server", required=True)
        ap.add_argument("--out", required=True)
        a = ap.parse_args(argv[1:])
        return host(a.lib, a.server, a.out)
    if argv[:1] == ["compare"] and len(argv) == 3:
        problems, summary = compare_text(open(argv[1]).read(), open(argv[2], errors="replace").read())
        for p in problems:
            print("DIFFERENT " + p)
        print(summary)
        return 1 if problems else 0
    if argv == ["self-test"]:
        return self_test()
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
