#!/usr/bin/env python3
"""Runs Khronos dEQP-GLES2 natively and through gpu-share and compares.

  deqp.py --suite TARBALL_OR_DIR --work DIR --lib DIR --server BIN --out FILE.md
          [--full | --every N] [--jobs J] [--case PATTERN]

The case list is the suite's mustpass (mustpass/gles2-main.txt). --full
runs all of it; otherwise the sample: every Nth case (N = --every, from the
first) plus every case of the groups in deqp-sample-groups.txt next to this
script (groups that crashed or failed through gpu-share at some time) and
every case named in deqp-known.txt.

Each run goes in chunks that survive crashes: dEQP runs a list of cases; when
the process under test dies, or the gpu-share session ends under it (the
server died or closed the session), the case it was in is counted as a crash
(a "server crash" when gpu-server itself died), the server is restarted if
needed, and dEQP starts again after that case. A case with no output for
CASE_TIMEOUT seconds is killed and counted as a timeout.

Exit status is non-zero if a case's result differs between the two runs and
is not listed, with its reason, in deqp-known.txt, or if gpu-share had a
crash or a server crash in any case.
"""
import argparse, os, queue, re, shutil, signal, subprocess, sys, tarfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
CASE_TIMEOUT = 120
MUSTPASS = "mustpass/gles2-main.txt"
# Result words dEQP prints under each case, and the columns of the table.
STATUSES = ["Pass", "Fail", "NotSupported", "QualityWarning", "CompatibilityWarning",
            "InternalError", "ResourceError", "Crash", "ServerCrash", "Timeout"]
COLUMNS = [("pass", ["Pass"]), ("fail", ["Fail", "InternalError", "ResourceError"]),
           ("not supported", ["NotSupported"]),
           ("warning", ["QualityWarning", "CompatibilityWarning"]),
           ("crash", ["Crash"]), ("server crash", ["ServerCrash"]), ("timeout", ["Timeout"]),
           ("not run", [None])]
CASE_LINE = re.compile(r"^Test case '([^']+)'\.\.")
STATUS_LINE = re.compile(r"^  (%s) \(" % "|".join(STATUSES))
SESSION_GONE = "gpu-share: session closed"
# A deqp-known.txt reason starting with this is checked, not only read: the
# case is run natively once more in an ES 2.0 context (as gpu-server asks
# the driver for) and must give the gpu-share result there.
ES2_TAG = "[es2-context]"


def unpack(suite, work):
    """The suite's directory: `suite` itself, or where its tarball is unpacked
    under `work` (again only when the tarball changed)."""
    if os.path.isdir(suite):
        return suite
    st = os.stat(suite)
    stamp_val = "%s %d %d" % (os.path.abspath(suite), st.st_size, int(st.st_mtime))
    dest = os.path.join(work, "suite")
    stamp = os.path.join(work, "suite.stamp")
    if not (os.path.exists(stamp) and open(stamp).read() == stamp_val):
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        with tarfile.open(suite) as t:
            t.extractall(dest, filter="tar") if hasattr(tarfile, "data_filter") else t.extractall(dest)
        open(stamp, "w").write(stamp_val)
    subs = [d for d in os.listdir(dest) if os.path.isfile(os.path.join(dest, d, "deqp-gles2"))]
    if not subs:
        sys.exit("deqp: no deqp-gles2 binary in %s" % suite)
    return os.path.join(dest, subs[0])


def read_list(name):
    """Lines of a file next to this script, without comments. Entries of
    deqp-known.txt are `CASE: reason`."""
    out = []
    for line in open(os.path.join(HERE, name)):
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def known_differences():
    known = {}
    for line in read_list("deqp-known.txt"):
        name, reason = line.split(":", 1)
        known[name.strip()] = reason.strip()
    return known


def sample(cases, every, groups, known):
    picked = set(cases[::every])
    for c in cases:
        if c in known or any(c.startswith(g + ".") or c == g for g in groups):
            picked.add(c)
    return [c for c in cases if c in picked]


class Server:
    """A gpu-server on a private socket, restarted when it dies."""

    def __init__(self, binary, sock, log):
        self.binary, self.sock, self.log, self.p, self.deaths = binary, sock, log, None, 0

    def ensure(self):
        if self.p is not None and self.p.poll() is None:
            return
        if self.p is not None:
            self.deaths += 1
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.p = subprocess.Popen([self.binary, "--socket", self.sock], stdout=self.log,
                                  stderr=self.log)
        for _ in range(200):
            if os.path.exists(self.sock):
                return
            time.sleep(0.025)
        sys.exit("deqp: gpu-server did not start")

    def dead(self):
        return self.p is not None and self.p.poll() is not None

    def stop(self):
        if self.p is not None and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            self.p.wait()
        if os.path.exists(self.sock):
            os.unlink(self.sock)


def run_cases(suite_dir, cases, env, tag, work, server=None):
    """Runs `cases` with dEQP, restarting after each crash; returns
    {case: status} and {case: last output lines} for cases that did not pass."""
    results, tails = {}, {}
    binary = os.path.join(suite_dir, "deqp-gles2")
    i = 0
    chunk = 0
    while i < len(cases):
        chunk += 1
        lst = os.path.join(work, "%s.caselist" % tag)
        with open(lst, "w") as f:
            f.write("\n".join(cases[i:]) + "\n")
        if server:
            server.ensure()
        cmd = [binary, "--deqp-surface-type=pbuffer", "--deqp-gl-config-name=rgba8888d24s8ms0",
               "--deqp-surface-width=256", "--deqp-surface-height=256",
               "--deqp-log-images=disable", "--deqp-log-shader-sources=disable",
               "--deqp-caselist-file=" + lst,
               "--deqp-log-filename=" + os.path.join(work, "%s.qpa" % tag)]
        p = subprocess.Popen(cmd, cwd=suite_dir, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
        lines = queue.Queue()

        def reader():
            for raw in p.stdout:
                lines.put(raw.decode(errors="replace").rstrip("\n"))
            lines.put(None)

        threading.Thread(target=reader, daemon=True).start()
        current, started, tail, ended = None, time.time(), [], None
        while True:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                line = ""
            if line is None:
                break
            if line:
                tail = (tail + [line])[-12:]
            m = CASE_LINE.match(line)
            if m:
                current, started, tail = m.group(1), time.time(), [line]
                continue
            m = STATUS_LINE.match(line)
            if m and current:
                results[current] = m.group(1)
                if m.group(1) != "Pass":
                    tails[current] = tail
                current = None
                continue
            why = None
            if line.startswith(SESSION_GONE) or (server and server.dead()):
                why = "ServerCrash" if server and (time.sleep(0.2) or server.dead()) else "Crash"
            elif current and time.time() - started > CASE_TIMEOUT:
                why = "Timeout"
            if why:
                ended = why
                os.killpg(p.pid, signal.SIGKILL)
                break
        p.wait()
        if current is None and ended:
            # The session ended between cases: blame the next one.
            nxt = [c for c in cases[i:] if c not in results]
            current = nxt[0] if nxt else None
        if current is not None:
            results[current] = ended or "Crash"
            tails[current] = tail + ["(exit status %s)" % p.returncode]
        done = [k for k, c in enumerate(cases) if c in results]
        nxt = (max(done) + 1) if done else len(cases)
        if nxt <= i:
            # Nothing ran at all (the binary cannot start): give up on the rest.
            for c in cases[i:]:
                tails.setdefault(c, tail)
            break
        i = nxt
    return results, tails


def shard_run(suite_dir, cases, env, tag, work, jobs, server_bin=None, lib=None):
    """Runs `cases` split over `jobs` processes (round-robin), each through
    its own gpu-server when server_bin is given."""
    shards = [cases[k::jobs] for k in range(jobs)]
    out, tails, servers, threads = {}, {}, [], []
    lock = threading.Lock()

    def one(k, shard):
        e = dict(env)
        server = None
        if server_bin:
            sock = "/tmp/tessera-deqp-%d-%s-%d.sock" % (os.getpid(), tag, k)
            log = open(os.path.join(work, "server-%s-%d.log" % (tag, k)), "w")
            server = Server(server_bin, sock, log)
            servers.append(server)
            e.update(LD_LIBRARY_PATH=lib, TESSERA_GPU_SOCKET=sock)
        r, t = run_cases(suite_dir, shard, e, "%s-%d" % (tag, k), work, server)
        if server:
            server.stop()
        with lock:
            out.update(r)
            tails.update(t)

    for k, shard in enumerate(shards):
        th = threading.Thread(target=one, args=(k, shard))
        th.start()
        threads.append(th)
    for th in threads:
        th.join()
    return out, tails, sum(s.deaths for s in servers)


def column(status):
    for name, members in COLUMNS:
        if status in members:
            return name
    return "fail"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--remote-only", action="store_true",
                    help="skip the native run (for investigating; every case then differs)")
    ap.add_argument("--case", action="append", default=[],
                    help="run only cases starting with this (repeatable)")
    a = ap.parse_args()

    os.makedirs(a.work, exist_ok=True)
    suite_dir = unpack(a.suite, a.work)
    cases = [c.strip() for c in open(os.path.join(suite_dir, MUSTPASS)) if c.strip()]
    known = known_differences()
    groups = read_list("deqp-sample-groups.txt")
    if a.case:
        cases = [c for c in cases if any(c.startswith(p) for p in a.case)]
        what = "cases under %s" % ", ".join(a.case)
    elif a.full:
        what = "full mustpass"
    else:
        cases = sample(cases, a.every, groups, known)
        what = "sample: every %dth case, the groups in deqp-sample-groups.txt and the cases in deqp-known.txt" % a.every

    # The native run is the suite's own run.sh environment; the remoted one
    # differs only in the library path and the server's socket.
    base = dict(os.environ, EGL_PLATFORM="surfaceless")
    base.setdefault("LIBGL_ALWAYS_SOFTWARE", "1")
    base.pop("LD_LIBRARY_PATH", None)
    server_bin = os.path.abspath(a.server)
    lib = os.path.abspath(a.lib)
    print("deqp: %s, %d cases, %d jobs each way" % (what, len(cases), a.jobs), flush=True)
    t0 = time.time()
    native = {}
    if not a.remote_only:
        native, _, _ = shard_run(suite_dir, cases, base, "native", a.work, a.jobs)
    t1 = time.time()
    print("deqp: native done in %.0f s" % (t1 - t0), flush=True)
    remote, rtails, deaths = shard_run(suite_dir, cases, base, "remote", a.work, a.jobs,
                                       server_bin, lib)
    t2 = time.time()
    print("deqp: gpu-share done in %.0f s" % (t2 - t1), flush=True)

    # Differences put down to the driver's ES 2.0 context are checked: the
    # case must give the gpu-share result natively too, in an ES 2.0 context.
    es2 = [c for c in cases if c in known and known[c].startswith(ES2_TAG)
           and native.get(c) != remote.get(c)]
    es2_native = {}
    if es2 and not a.remote_only:
        es2_native, _, _ = shard_run(suite_dir, es2, dict(base, MESA_GLES_VERSION_OVERRIDE="2.0"),
                                     "native-es2", a.work, 1)

    totals = {"native": {}, "remote": {}}
    rows, bad, explained = [], [], 0
    for c in cases:
        rn, rr = native.get(c), remote.get(c)
        totals["native"][column(rn)] = totals["native"].get(column(rn), 0) + 1
        totals["remote"][column(rr)] = totals["remote"].get(column(rr), 0) + 1
        crash = rr in ("Crash", "ServerCrash", "Timeout", None)
        if rn == rr and not crash:
            continue
        if c in known and known[c].startswith(ES2_TAG) and es2_native.get(c) != rr:
            rows.append((c, rn, rr, "UNEXPLAINED: natively in an ES 2.0 context it gives %s"
                         % es2_native.get(c)))
            bad.append(c)
        elif c in known and not crash:
            rows.append((c, rn, rr, known[c]))
            explained += 1
        else:
            rows.append((c, rn, rr, "UNEXPLAINED"))
            bad.append(c)

    names = [n for n, _ in COLUMNS]
    with open(a.out, "w") as f:
        f.write("# dEQP-GLES2: native Mesa vs gpu-share\n\n")
        f.write("Generated by `gpu-share/ci/deqp.py` (%s, %d cases; native %.0f s, gpu-share %.0f s, "
                "%d jobs each way; `cargo xtask test conformance-full` writes this file, "
                "`cargo xtask test conformance` runs the sample). How it runs and what each "
                "difference means: [gpu-share.md](gpu-share.md#conformance-deqp-gles2).\n\n"
                % (what, len(cases), t1 - t0, t2 - t1, a.jobs))
        f.write("| run | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n")
        for k in ("native", "remote"):
            f.write("| %s | " % ("native Mesa" if k == "native" else "gpu-share")
                    + " | ".join(str(totals[k].get(n, 0)) for n in names) + " |\n")
        f.write("\nSame result both ways: %d of %d; different and explained: %d; unexplained: %d.\n\n"
                % (len(cases) - len(rows), len(cases), explained, len(bad)))
        if rows:
            f.write("| case | native | gpu-share | reason |\n|---|---|---|---|\n")
            for r in rows:
                f.write("| %s | %s | %s | %s |\n" % tuple(x if x is not None else "not run" for x in r))
    for c in bad:
        print("MISMATCH %s: native %s, gpu-share %s" % (c, native.get(c), remote.get(c)))
        for line in rtails.get(c, [])[-8:]:
            print("    " + line)
    print("deqp: %d cases; native %s; gpu-share %s; %d server restarts; %d unexplained differences (table in %s)"
          % (len(cases), totals["native"], totals["remote"], deaths, len(bad), a.out))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
