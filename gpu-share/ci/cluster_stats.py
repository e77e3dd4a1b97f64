#!/usr/bin/env python3
"""The cluster's frame statistics lines (cockpit_cluster::stats), read back
from a log: the cluster VM's console or cluster-host's output, e.g.

    cluster | cluster: frames 300 period mean 34.1 p95 36.0 max 41.2 ms missed 3

Each line covers the 30 frames before it (docs/cockpit.md).

    cluster_stats.py summary LOG [--skip N]
    cluster_stats.py ratio FLOOD_LOG BUSY_LOG [--skip N] [--bound B] [--max-missed-pct P]
    cluster_stats.py selftest

summary: the windows' figures together (the mean and the median of the
window means, the largest p95 and max, the missed frames summed).
--skip: leave out the first N windows (set-up and warm-up; default 1).
ratio: the cluster's period while the IVI floods the GPU over its period
while the IVI burns the same CPU without the GPU (the cockpit's
cluster-first check), each the median of the window means, so that one
stall of a shared host (it lands in one window) does not decide it while
a cluster held back by the flood (every window) does; exits 1 when it is
above --bound (default 1.1), when the flood run missed more than
--max-missed-pct of its frames (default: not checked), or when a log has
no window left. selftest: checks all that on made-up logs (gpu tier).
"""
import re
import sys

LINE = re.compile(
    r"cluster: frames (\d+) period mean ([\d.]+) p95 ([\d.]+) max ([\d.]+) ms missed (\d+)"
)


def windows(text):
    """(frames, mean, p95, max, missed) of each statistics line."""
    return [
        (int(m[1]), float(m[2]), float(m[3]), float(m[4]), int(m[5]))
        for m in LINE.finditer(text)
    ]


def summary(text, skip):
    ws = windows(text)[skip:]
    if not ws:
        return None
    n = len(ws)
    means = sorted(w[1] for w in ws)
    return {
        "median": (means[(n - 1) // 2] + means[n // 2]) / 2,
        "windows": n,
        "frames": 30 * n,
        "mean": sum(w[1] for w in ws) / n,
        "p95": max(w[2] for w in ws),
        "max": max(w[3] for w in ws),
        "missed": sum(w[4] for w in ws),
    }


def show(name, s):
    return (
        f"{name}: {s['frames']} frames in {s['windows']} windows, period mean "
        f"{s['mean']:.2f} ms, median window {s['median']:.2f} ms (window p95 up to {s['p95']:.1f}, longest {s['max']:.1f}), "
        f"missed {s['missed']} ({100.0 * s['missed'] / s['frames']:.1f} %)"
    )


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def option(args, name, default, kind):
    if name in args:
        i = args.index(name)
        if i + 1 >= len(args):
            sys.exit(f"{name} needs a value")
        v = kind(args[i + 1])
        del args[i : i + 2]
        return v
    return default


def selftest():
    """The ratio's verdicts on made-up logs, through main() as the tier calls it."""
    import os
    import tempfile

    def log(means, missed=0, prefix="cluster | "):
        return "".join(
            f"{prefix}cluster: frames {30 * (i + 1)} period mean {m} p95 {m} max {m} ms missed {missed}\n"
            for i, m in enumerate(means)
        )

    steady = log([90.0] + [33.0] * 10)
    cases = [
        # (flood log, busy log, extra arguments, expected exit status)
        (log([90.0] + [33.0] * 9 + [400.0]), steady, [], 0),  # one stall: median holds
        (log([33.0] + [36.0] * 10), steady, [], 0),  # 1.09
        (log([33.0] + [37.0] * 10), steady, [], 1),  # 1.12
        (log([33.0] + [37.0] * 10), steady, ["--bound", "1.2"], 0),
        (log([33.0] * 11, missed=3), steady, ["--max-missed-pct", "20"], 0),  # 10 %
        (log([33.0] * 11, missed=9), steady, ["--max-missed-pct", "20"], 1),  # 30 %
        (log([33.0]), steady, [], 1),  # nothing after the skipped window
        ("no statistics here\n", steady, [], 1),
    ]
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        for i, (flood, busy, extra, want) in enumerate(cases):
            paths = []
            for name, text in (("flood", flood), ("busy", busy)):
                paths.append(os.path.join(d, f"{i}-{name}.log"))
                with open(paths[-1], "w") as f:
                    f.write(text)
            got = main(["cluster_stats.py", "ratio", *paths, *extra])
            if got != want:
                print(f"case {i}: exit {got}, expected {want}")
                bad += 1
    print(f"selftest: {len(cases) - bad} of {len(cases)} cases as expected")
    return 1 if bad else 0


def main(argv):
    args = argv[1:]
    if args == ["selftest"]:
        return selftest()
    skip = option(args, "--skip", 1, int)
    bound = option(args, "--bound", 1.1, float)
    max_missed = option(args, "--max-missed-pct", None, float)
    if len(args) == 2 and args[0] == "summary":
        s = summary(read(args[1]), skip)
        if s is None:
            print(f"{args[1]}: no statistics line after the first {skip}")
            return 1
        print(show(args[1], s))
        return 0
    if len(args) == 3 and args[0] == "ratio":
        flood, busy = (summary(read(p), skip) for p in args[1:])
        for path, s in zip(args[1:], (flood, busy)):
            if s is None:
                print(f"{path}: no statistics line after the first {skip}")
                return 1
        print(show("under the GPU flood", flood))
        print(show("under the CPU busy loop", busy))
        ratio = flood["median"] / busy["median"]
        ok = ratio <= bound
        print(
            f"cluster period ratio, flood over busy: {ratio:.3f} (bound {bound}; "
            f"of the plain means {flood['mean'] / busy['mean']:.3f})"
        )
        if max_missed is not None:
            pct = 100.0 * flood["missed"] / flood["frames"]
            print(f"missed under the flood: {pct:.1f} % (bound {max_missed} %)")
            ok = ok and pct <= max_missed
        return 0 if ok else 1
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
