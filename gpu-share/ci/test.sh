#!/usr/bin/env bash
# gpu tier: builds and tests everything in gpu-share/. Run from the repo root
# on Debian bookworm as root; installs what it needs. Ends with the line
# "N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. gpu-share/ci/common.sh
. gpu-share/ci/cockpit.sh

PASSED=0
FAILED=0
FAILURES=""
step() { # step NAME COMMAND...: runs one check and counts it
    local name=$1; shift
    echo "=== gpu: $name"
    if "$@"; then
        PASSED=$((PASSED + 1)); echo "--- ok: $name"
    else
        FAILED=$((FAILED + 1)); FAILURES="$FAILURES\n  $name"; echo "--- FAILED: $name"
    fi
}
trap 'gpu_stop_server; ck_stop' EXIT

step "install dependencies" gpu_install_deps
step "build (release) and install front-end" gpu_build
GPU_CRATES="-p gpu-wire -p gpu-gen -p gpu-codec -p gpu-frontend -p gpu-transport -p gpu-capi -p gpu-server -p gpu-xvm -p cockpit-cluster --features gpu-xvm/host"
step "unit tests (wire, generator, codec, server)" cargo test $GPU_CRATES
step "cluster_stats.py: the cluster-first ratio's verdicts on made-up logs" \
    python3 gpu-share/ci/cluster_stats.py selftest
step "decoder fuzz, 2M records" env GPU_FUZZ_ITERS=2000000 cargo test --release -p gpu-codec --test fuzz -- --nocapture
step "front-end, cluster and cluster image build for aarch64-unknown-none" \
    cargo build -p gpu-frontend -p cockpit-cluster -p cluster-guest --target aarch64-unknown-none
aarch64_linux() {
    # .cargo/config.toml links aarch64 Linux programs statically (the Linux
    # guests' initramfs tools); the front-end is a shared library, and
    # RUSTFLAGS replaces the config's flags for this build.
    RUSTFLAGS="-C target-feature=-crt-static" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        cargo build --release -p gpu-capi -p gpu-server --target aarch64-unknown-linux-gnu || return 1
    # The aarch64 library must export the same GL/EGL entry points.
    local a b
    a=$(nm -D --defined-only target/release/libtessera_gles.so | awk '/ T (gl|egl)/{print $3}' | sort | md5sum)
    b=$(nm -D --defined-only target/aarch64-unknown-linux-gnu/release/libtessera_gles.so | awk '/ T (gl|egl)/{print $3}' | sort | md5sum)
    [ "$a" = "$b" ]
}
step "front-end and server build for aarch64 Linux" aarch64_linux

export MESA_GLES_VERSION_OVERRIDE=2.0
step "start server" gpu_start_server

compare() { # native vs remoted output of one program
    local p=$1 n r
    n=$("$GPU_OUT/bin/$p" 2>&1) || { echo "native $p failed: $n"; return 1; }
    r=$(gpu_remote timeout 60 "$GPU_OUT/bin/$p" 2>&1) || { echo "remoted $p failed: $r"; return 1; }
    echo "$r"
    [ "$n" = "$r" ] || { diff <(echo "$n") <(echo "$r"); return 1; }
}
for p in $PROGS; do
    step "$p: native and remoted identical" compare "$p"
done

concurrent() {
    # All programs at once through one server: sessions must not disturb
    # each other (names, handles, contexts are per client).
    local p pids="" ok=0
    for p in $PROGS; do
        "$GPU_OUT/bin/$p" > "$GPU_OUT/native-$p.txt" 2>&1 || return 1
        gpu_remote timeout 120 "$GPU_OUT/bin/$p" > "$GPU_OUT/remote-$p.txt" 2>&1 &
        pids="$pids $!"
    done
    for p in $pids; do wait "$p" || ok=1; done
    for p in $PROGS; do
        cmp -s "$GPU_OUT/native-$p.txt" "$GPU_OUT/remote-$p.txt" || { echo "$p differs"; ok=1; }
    done
    return $ok
}
step "all programs concurrently through one server" concurrent

window_frame() {
    local out hash png
    out=$(gpu_remote timeout 60 "$GPU_OUT/bin/swap" 2>&1) || { echo "$out"; return 1; }
    echo "$out"
    hash=$(echo "$out" | awk '/^frame hash/{print $3}')
    # The server writes the PNG when the session ends.
    for _ in $(seq 50); do
        png=$(grep -o "newest frame in .*" "$GPU_OUT/server.log" | tail -1 | cut -d' ' -f4)
        [ -n "$png" ] && [ -f "$png" ] && break
        sleep 0.1
    done
    python3 gpu-share/ci/pngcheck.py "$png" "$hash"
}
step "window surface: swapped frame kept and written as PNG" window_frame

hostile() {
    # A well-behaved client runs while hostile sessions are closed; the
    # server must survive and serve the next client.
    gpu_remote "$GPU_OUT/bin/bench" draws 3 > "$GPU_OUT/bystander.log" 2>&1 &
    local by=$!
    GPU_SERVER_PID=$GPU_SERVER_PID target/release/gpu-hostile || { wait $by; return 1; }
    wait $by || { echo "bystander failed"; cat "$GPU_OUT/bystander.log"; return 1; }
    kill -0 "$GPU_SERVER_PID" || { echo "server died"; return 1; }
    compare triangle >/dev/null
}
step "malformed streams end only their own session" hostile

limits() {
    # A server with small limits (gpu-hostile prints them) and a cluster
    # socket: each limit is exceeded once, the watchdog fires, and a flood
    # of heavy draws does not starve the cluster's small frames.
    local sock=/tmp/tessera-gpu-ci-limits-$$.sock csock=/tmp/tessera-gpu-ci-cluster-$$.sock spid rc
    rm -f "$sock" "$csock"
    # shellcheck disable=SC2046
    target/release/gpu-server --socket "$sock" --cluster-socket "$csock" \
        $(target/release/gpu-hostile --server-limits) 2> "$GPU_OUT/server-limits.log" &
    spid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && [ -S "$csock" ] && break; sleep 0.05; done
    TESSERA_GPU_SOCKET=$sock TESSERA_GPU_CLUSTER_SOCKET=$csock GPU_SERVER_PID=$spid \
        target/release/gpu-hostile --limits
    rc=$?
    kill -0 "$spid" || { echo "server died"; rc=1; }
    kill "$spid"; wait "$spid" 2>/dev/null
    rm -f "$sock" "$csock"
    return $rc
}
step "limits, GPU watchdog and cluster priority" limits

server_death() {
    # A client whose server dies must not hang: its calls fail and it runs
    # to its end.
    local sock=/tmp/tessera-gpu-ci-death-$$.sock out pid spid
    target/release/gpu-server --socket "$sock" 2>/dev/null &
    spid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
    TESSERA_GPU_SOCKET=$sock gpu_remote timeout 30 "$GPU_OUT/bin/bench" draws 4 > "$GPU_OUT/death.log" 2>&1 &
    pid=$!
    sleep 1
    kill -9 "$spid"; wait "$spid" 2>/dev/null
    wait "$pid"; local rc=$?
    rm -f "$sock"
    cat "$GPU_OUT/death.log"
    [ "$rc" -ne 124 ] && grep -q "session closed" "$GPU_OUT/death.log"
}
step "a client outlives its server's death without hanging" server_death

# The cockpit over the cross-VM transport, emulated on the host.
ck_steps

step "piglit GLES2, full set, native vs remoted" python3 gpu-share/ci/piglit.py \
    --lib "$PWD/$GPU_OUT/lib" --server "$PWD/target/release/gpu-server" --out "$GPU_OUT/piglit.md"

gpu_stop_server
[ -n "$FAILURES" ] && printf "gpu: failed:$FAILURES\n"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
