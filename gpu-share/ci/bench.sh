#!/usr/bin/env bash
# gpu benchmarks (not tests): native vs remoted frames per second for four
# workloads, the synchronous call's latency, the per-call costs of encoding
# and of decoding plus dispatching (no driver), and raw ring throughput.
# Prints the figures; exits non-zero only if something fails to run.
#
# GPU_BENCH_PREBUILT=1 skips installing and building: target/release and
# target/gpu-share must already hold the binaries (a machine without the
# toolchain, e.g. the GPU machine in docs/gpu-share.md).
set -eu
cd "$(dirname "$0")/../.."
. gpu-share/ci/common.sh
SECONDS_PER_RUN=${GPU_BENCH_SECONDS:-2}
ROUNDS=${GPU_BENCH_ROUNDS:-3}

if [ "${GPU_BENCH_PREBUILT:-0}" != 1 ]; then
    gpu_install_deps
    gpu_build
fi
export MESA_GLES_VERSION_OVERRIDE=2.0
trap 'gpu_stop_server' EXIT
gpu_start_server

echo "| workload | native fps | gpu-share fps | ratio |"
echo "|---|---|---|---|"
# The machine is shared, so each figure is the best of ROUNDS runs, native
# and remoted alternating so that both see the same background load.
best() { sort -g | tail -1; }
us=""
for mode in draws upload readback roundtrip sync query; do
    ns=""; rs=""
    for _ in $(seq "$ROUNDS"); do
        ns="$ns $("$GPU_OUT/bin/bench" "$mode" "$SECONDS_PER_RUN" | awk '{print $3}')"
        rs="$rs $(gpu_remote "$GPU_OUT/bin/bench" "$mode" "$SECONDS_PER_RUN" | awk '{print $3}')"
    done
    n=$(echo $ns | tr ' ' '\n' | best)
    r=$(echo $rs | tr ' ' '\n' | best)
    echo "| $mode | $n | $r | $(awk -v a="$r" -v b="$n" 'BEGIN{printf "%.3f", a/b}') |"
    # roundtrip, sync and query make 1000 synchronous calls per frame.
    case $mode in roundtrip|sync|query)
        us="$us$(awk -v m="$mode" -v a="$r" -v b="$n" \
            'BEGIN{printf "%s: %.2f us per call through gpu-share (native %.2f us)\n", m, 1000/a, 1000/b}')"$'\n'
    esac
done
gpu_stop_server
printf '%s' "$us"
# Per-call costs that no driver hides (a no-op driver behind the real
# server loop), then the wire alone.
target/release/gpu-callbench
target/release/gpu-ringbench
