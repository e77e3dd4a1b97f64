#!/usr/bin/env bash
# gpu benchmarks (not tests): native vs remoted frames per second for three
# workloads, and raw ring throughput. Prints the figures; exits non-zero only
# if something fails to run.
set -eu
cd "$(dirname "$0")/../.."
. gpu-share/ci/common.sh
SECONDS_PER_RUN=${GPU_BENCH_SECONDS:-2}
ROUNDS=${GPU_BENCH_ROUNDS:-3}

gpu_install_deps
gpu_build
export MESA_GLES_VERSION_OVERRIDE=2.0
trap 'gpu_stop_server' EXIT
gpu_start_server

echo "| workload | native fps | gpu-share fps | ratio |"
echo "|---|---|---|---|"
# The machine is shared, so each figure is the best of ROUNDS runs, native
# and remoted alternating so that both see the same background load.
best() { sort -g | tail -1; }
for mode in draws upload readback roundtrip; do
    ns=""; rs=""
    for _ in $(seq "$ROUNDS"); do
        ns="$ns $("$GPU_OUT/bin/bench" "$mode" "$SECONDS_PER_RUN" | awk '{print $3}')"
        rs="$rs $(gpu_remote "$GPU_OUT/bin/bench" "$mode" "$SECONDS_PER_RUN" | awk '{print $3}')"
    done
    n=$(echo $ns | tr ' ' '\n' | best)
    r=$(echo $rs | tr ' ' '\n' | best)
    echo "| $mode | $n | $r | $(awk -v a="$r" -v b="$n" 'BEGIN{printf "%.2f", a/b}') |"
done
gpu_stop_server
target/release/gpu-ringbench
