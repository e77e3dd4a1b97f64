# Shared by test.sh and bench.sh: set-up, build and install steps.
# Sourced from the repository root.

GPU_OUT=target/gpu-share
PROGS="triangle texquad fbo readpixels errors egl elements builtins indexbuf queries vao"

# Installs what the gpu tier needs on a fresh Debian bookworm (idempotent).
gpu_install_deps() {
    local pkgs="build-essential pkg-config python3 libegl-dev libgles-dev libegl1 libgles2 libegl-mesa0 libgl1-mesa-dri piglit gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
    local missing=""
    for p in $pkgs; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    # Mesa comes from bookworm-backports (25.x), as QEMU 10 pulls it in for
    # the other tiers too: the piglit table in docs/ is for that Mesa.
    local mesa="libegl-mesa0 libgl1-mesa-dri libgbm1"
    local mesa_ok=1
    for p in $mesa; do
        dpkg -s "$p" 2>/dev/null | grep -q '^Version: .*bpo12' || mesa_ok=0
    done
    if [ -n "$missing" ] || [ $mesa_ok = 0 ]; then
        echo "gpu: installing$missing (Mesa from bookworm-backports)"
        export DEBIAN_FRONTEND=noninteractive
        grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/ \
            || echo 'deb http://deb.debian.org/debian bookworm-backports main' \
                > /etc/apt/sources.list.d/bookworm-backports.list
        apt-get update -qq
        apt-get install -y -q -t bookworm-backports $mesa >/dev/null
        [ -z "$missing" ] || apt-get install -y -q $missing >/dev/null
    fi
    rustup target list --installed --toolchain 1.95.0 | grep -q '^aarch64-unknown-linux-gnu$' \
        || rustup target add aarch64-unknown-linux-gnu --toolchain 1.95.0
    rustup target list --installed --toolchain 1.95.0 | grep -q '^aarch64-unknown-none$' \
        || rustup target add aarch64-unknown-none --toolchain 1.95.0
}

# Builds the front-end library and the server (release) and lays out
# $GPU_OUT/lib with the two sonames pointing at the one library.
gpu_build() {
    cargo build --release -p gpu-capi -p gpu-server
    mkdir -p "$GPU_OUT/lib" "$GPU_OUT/bin"
    # Replaced, not overwritten: programs still running have it mapped.
    cp -f target/release/libtessera_gles.so "$GPU_OUT/lib/.libtessera_gles.so.new"
    mv -f "$GPU_OUT/lib/.libtessera_gles.so.new" "$GPU_OUT/lib/libtessera_gles.so"
    ln -sf libtessera_gles.so "$GPU_OUT/lib/libEGL.so.1"
    ln -sf libtessera_gles.so "$GPU_OUT/lib/libGLESv2.so.2"
    # The development names too: programs that dlopen them (dEQP) exist.
    ln -sf libtessera_gles.so "$GPU_OUT/lib/libEGL.so"
    ln -sf libtessera_gles.so "$GPU_OUT/lib/libGLESv2.so"
    for p in $PROGS swap bench; do
        gcc -O2 -Wall -Werror -o "$GPU_OUT/bin/$p" "gpu-share/tests/progs/$p.c" \
            -Igpu-share/include -lEGL -lGLESv2 -Wl,--no-as-needed -lm
    done
}

# Starts a server on a private socket; sets GPU_SERVER_PID and exports
# TESSERA_GPU_SOCKET for the clients.
gpu_start_server() {
    export TESSERA_GPU_SOCKET="/tmp/tessera-gpu-ci-$$.sock"
    mkdir -p "$GPU_OUT/frames"
    target/release/gpu-server --socket "$TESSERA_GPU_SOCKET" --frames "$GPU_OUT/frames" \
        2> "$GPU_OUT/server.log" &
    GPU_SERVER_PID=$!
    for _ in $(seq 100); do
        [ -S "$TESSERA_GPU_SOCKET" ] && return 0
        sleep 0.05
    done
    echo "gpu: server did not start"; cat "$GPU_OUT/server.log"
    return 1
}

gpu_stop_server() {
    if [ -n "${GPU_SERVER_PID:-}" ]; then
        kill "$GPU_SERVER_PID" 2>/dev/null || true
        wait "$GPU_SERVER_PID" 2>/dev/null || true
    fi
    GPU_SERVER_PID=
    rm -f "$TESSERA_GPU_SOCKET"
}

# Runs a program through gpu-share.
gpu_remote() {
    LD_LIBRARY_PATH="$PWD/$GPU_OUT/lib" "$@"
}
