#!/usr/bin/env python3
"""The cluster's frame statistics lines (cockpit_cluster::stats), read back
from a log: the cluster VM's console or cluster-host's output, e.g.

    cluster | cluster: frames 300 period mean 34.1 p95 36.0 max 41.2 ms missed 3

Each line covers the 30 frames before it (docs/cockpit.md).

    cluster_stats.py summary LOG [--skip N]
    cluster_stats.py ratio FLOOD_LOG BUSY_LOG [--skip N] [--bound B] [--max-missed-pct P]

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
no window left.
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


def main(argv):
    args = argv[1:]
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
