# The cockpit on the host (docs/cockpit.md): gpu-server with the
# compositor, the cluster program and the IVI client, each a "VM" of
# tessera-shm-host, talking gpu-share over emulated shared regions, checked
# by the composited screenshot. Sourced by test.sh (after gpu_build) for
# its `step`; `bash gpu-share/ci/cockpit.sh` runs it alone.

CK=target/cockpit-host
CK_BOARD=${CK_BOARD:-boards/qemu-virt.toml}
# Extra gpu-server arguments (breaking it on purpose: `--limit batch_ms=500`).
CK_REF_SOCK=/tmp/tessera-cockpit-ref-$$.sock
CK_PIDS=""

ck_build() {
    cargo build --release -p gpu-xvm -p cockpit-cluster \
        --features gpu-xvm/shm-host,cockpit-cluster/host || return 1
    local p
    for p in ivi ivi-flood ivi-busy cluster-native; do
        gcc -O2 -Wall -Werror -o "$GPU_OUT/bin/$p" "gpu-share/tests/progs/$p.c" \
            -Igpu-share/include -lEGL -lGLESv2 -Wl,--no-as-needed -lm || return 1
    done
}

ck_pid() { cat "$CK/shm/$1.pid"; }
ck_count() { grep -c "$1" "$2" 2>/dev/null || true; }

# A copy of the newest screenshot (replaced whole by the server).
ck_snap() { cp "$CK/screen.png" "$CK/snap-$1.png" 2>/dev/null; }
# Frame number in REGION's area of snapshot NAME, or its state.
ck_read() { python3 gpu-share/ci/cockpit.py read "$CK/snap-$1.png" "$CK_BOARD" | awk -v r="$2" '$1 == r {print ($2 == "frame") ? $3 : $2}'; }

# Waits up to $1 seconds for command $2... to succeed.
ck_wait() {
    local t=$1; shift
    for _ in $(seq $((t * 10))); do "$@" && return 0; sleep 0.1; done
    echo "timed out after ${t}s waiting for: $*"
    return 1
}
ck_live() { # snapshot $1 shows a frame in every area
    local r
    ck_snap "$1" || return 1
    r=$(python3 gpu-share/ci/cockpit.py read "$CK/snap-$1.png" "$CK_BOARD") || return 1
    [ -n "$r" ] && [ "$(echo "$r" | grep -vc ' frame ')" = 0 ]
}
ck_connects_over() { # more than $2 sessions were connected on region $1
    [ "$(ck_count "connected on region $1" "$CK/host.log")" -gt "$2" ]
}

ck_start() {
    rm -rf "$CK" && mkdir -p "$CK"
    export MESA_GLES_VERSION_OVERRIDE=2.0
    target/release/gpu-server --socket "$CK_REF_SOCK" 2> "$CK/ref-server.log" &
    CK_PIDS="$CK_PIDS $!"
    target/release/tessera-shm-host --board "$CK_BOARD" --dir "$CK/shm" \
        --vm "gpu=target/release/gpu-server --board $CK_BOARD --screenshots $CK --screenshot-ms 100 ${CK_SERVER_ARGS:-}" \
        --vm "cluster=target/release/cluster-host" \
        --vm "ivi=env LD_LIBRARY_PATH=$PWD/$GPU_OUT/lib $GPU_OUT/bin/ivi" \
        > "$CK/host.log" 2>&1 &
    CK_HOST=$!
    CK_PIDS="$CK_PIDS $CK_HOST"
    ck_wait 30 ck_live start || { tail -20 "$CK/host.log"; return 1; }
    [ -S "$CK_REF_SOCK" ]
}

ck_stop() {
    local p
    for p in $CK_PIDS; do kill "$p" 2>/dev/null; done
    for p in $CK_PIDS; do wait "$p" 2>/dev/null; done
    CK_PIDS=""
    rm -f "$CK_REF_SOCK"
}

CK_REFS=()
ck_refs() { # reference renderings, frame {n} into {out}: the same programs outside the cockpit
    CK_REFS=(--ref "gpu-cluster=target/release/cluster-host --socket $CK_REF_SOCK --ref {n} {out}"
        --ref "gpu-ivi=$GPU_OUT/bin/ivi --ref {n} {out}")
}

ck_check() { # snapshot $1 matches the references (extra arguments: cockpit.py's)
    local s=$1; shift
    ck_refs
    python3 gpu-share/ci/cockpit.py check "$CK/snap-$s.png" "${@:-$CK_BOARD}" "${CK_REFS[@]}"
}

ck_matches() {
    ck_snap match && ck_check match
}

ck_fails_when_broken() {
    # The check itself must fail on a wrong layout, a stale frame and a
    # missing client (each broken once, here, on real screenshots).
    local swapped="$CK/swapped.toml" stale
    sed -e 's/^x = 0$/x = @/' -e 's/^x = 256$/x = 0/' -e 's/^x = @$/x = 256/' "$CK_BOARD" > "$swapped"
    grep -q '^x = 256' "$swapped" || { echo "could not swap the layout"; return 1; }
    if ck_check match "$swapped" > "$CK/broken-layout.txt"; then
        echo "a swapped layout passed"; return 1
    fi
    ck_refs
    stale=("${CK_REFS[@]//\{n\}/\$((\{n\}-2))}")
    if python3 gpu-share/ci/cockpit.py check "$CK/snap-match.png" "$CK_BOARD" "${stale[@]}" > "$CK/broken-stale.txt"; then
        echo "a frame two behind passed"; return 1
    fi
    grep -q FAIL "$CK/broken-layout.txt" && grep -q FAIL "$CK/broken-stale.txt"
}

ck_advance() { # frames move on in every area (nothing frozen)
    local a b r
    ck_snap adv1; sleep 1; ck_snap adv2
    for r in gpu-cluster gpu-ivi; do
        a=$(ck_read adv1 $r); b=$(ck_read adv2 $r)
        echo "$r: frame $a, one second later $b"
        [[ "$a" =~ ^[0-9]+$ && "$b" =~ ^[0-9]+$ ]] && [ "$b" -gt "$a" ] || return 1
    done
}

ck_no_signal() { # a client that stops presenting gets the no-signal tile
    local ivi c1 c2
    ivi=$(ck_pid ivi)
    ck_snap ns1
    kill -STOP "$ivi"
    sleep 1.6 # no_signal_ms (1000) + a screenshot period + margin
    ck_snap ns2
    kill -CONT "$ivi"
    c1=$(ck_read ns1 gpu-cluster); c2=$(ck_read ns2 gpu-cluster)
    echo "ivi paused: ivi area $(ck_read ns2 gpu-ivi), cluster frame $c1 -> $c2"
    [ "$(ck_read ns2 gpu-ivi)" = no-signal ] && [ "$c2" -gt "$c1" ] || return 1
    if ck_check ns2 > "$CK/broken-missing.txt"; then
        echo "a missing client passed the check"; return 1
    fi
    ck_wait 10 ck_live ns3
}

ck_client_restart() { # the cluster dies: noticed, started again cleanly
    local n
    n=$(ck_count "connected on region gpu-cluster" "$CK/host.log")
    kill -9 "$(ck_pid cluster)"
    ck_wait 15 grep -q "vm cluster started (boot 1" "$CK/host.log" || return 1
    ck_wait 15 ck_connects_over gpu-cluster "$n" || return 1
    ck_wait 10 ck_live cr && ck_snap cr && ck_check cr
}

ck_server_restart() { # the server dies: both clients notice and draw again
    kill -9 "$(ck_pid gpu)"
    ck_wait 15 grep -q "vm gpu started (boot 1" "$CK/host.log" || return 1
    ck_wait 20 grep -q "cluster: session lost" "$CK/host.log" || return 1
    ck_wait 20 grep -q "vm ivi started (boot 1" "$CK/host.log" || return 1
    rm -f "$CK/screen.png"
    ck_wait 20 test -f "$CK/screen.png" || return 1
    ck_wait 20 ck_live sr && ck_snap sr && ck_check sr
}

ck_hostile() {
    # A hostile IVI (malformed record on its region) ends only its own
    # session: it connects again and draws; the cluster's session goes on.
    local ivi n c1 c2 rc
    ivi=$(ck_pid ivi)
    n=$(ck_count "connected on region gpu-cluster" "$CK/host.log")
    kill -STOP "$ivi"
    ck_snap h1
    TESSERA_SHM="gpu-ivi=$CK/shm/gpu-ivi:0" timeout 60 target/release/cluster-host \
        --region gpu-ivi --hostile-after 10 --count 40 --period-ms 20 > "$CK/hostile.log" 2>&1
    rc=$?
    ck_snap h2
    kill -CONT "$ivi"
    cat "$CK/hostile.log"
    c1=$(ck_read h1 gpu-cluster); c2=$(ck_read h2 gpu-cluster)
    echo "cluster frame $c1 -> $c2 meanwhile"
    [ $rc = 0 ] && grep -q "session ended: bad" "$CK/host.log" \
        && [ "$(ck_count "connected on region gpu-cluster" "$CK/host.log")" = "$n" ] \
        && [ "$c2" -gt "$c1" ] || return 1
    # The paused IVI lost its session to the newcomer: it exits and its VM
    # restarts it.
    ck_wait 20 ck_live h3
}

ck_cluster_first() {
    # The cluster goes first across regions too: while the IVI's region
    # floods the GPU (heavy draws, 40 per glFinish), a cluster on the
    # cluster's region (the board's `cluster = true` area) waits at most
    # for the flood's work in flight. Bounds: the 95th percentile of its
    # frame times under 3 flood draws plus 100 ms (the gpu tier's socket
    # check; the longest is reported, not bounded: on a shared machine it
    # measures the host's scheduling), the mean under 2 flood draws plus
    # 20 ms.
    local ivi cl fpid rc one worst mean
    ivi=$(ck_pid ivi); cl=$(ck_pid cluster)
    kill -STOP "$ivi" "$cl"
    TESSERA_SHM="gpu-ivi=$CK/shm/gpu-ivi:0" target/release/cluster-host --region gpu-ivi \
        --flood > "$CK/flood.log" 2>&1 &
    fpid=$!
    if ck_wait 30 grep -q "one draw" "$CK/flood.log"; then
        TESSERA_SHM="gpu-cluster=$CK/shm/gpu-cluster:0" timeout 60 target/release/cluster-host \
            --count 60 --stats > "$CK/first.log" 2>&1
        rc=$?
    else
        rc=1
    fi
    kill "$fpid"; wait "$fpid" 2>/dev/null
    kill -CONT "$ivi" "$cl"
    grep -h -E "one draw|longest" "$CK/flood.log" "$CK/first.log"
    one=$(awk '/one draw/{print $4}' "$CK/flood.log")
    worst=$(awk '/longest/{print $9}' "$CK/first.log")
    mean=$(awk '/longest/{print $12}' "$CK/first.log")
    [ $rc = 0 ] && [ -n "$one" ] && [ -n "$worst" ] && [ -n "$mean" ] || return 1
    # Mean: the cluster's own frame plus about one flood draw in flight.
    python3 -c 'import sys; one, worst, mean = map(float, sys.argv[1:]); b, m = 3 * one + 100, 2 * one + 20
print(f"cluster frame during the flood: 95th percentile {worst} ms (bound {b:.1f}), mean {mean} ms (bound {m:.1f})")
sys.exit(worst > b or mean > m)' "$one" "$worst" "$mean" || return 1
    # Both supervised clients lost their regions to the newcomers: they
    # connect again (the IVI by restarting).
    ck_wait 30 ck_live cf
}

ck_ratio_run() { # ck_ratio_run NAME LOAD...: the cluster's 330 frames while LOAD runs as the IVI
    local name=$1 lpid rc; shift
    "$@" > "$CK/ivi-$name.log" 2>&1 &
    lpid=$!
    # The load's first line: it is past its set-up.
    if ck_wait 60 grep -q " duty " "$CK/ivi-$name.log"; then
        TESSERA_SHM="gpu-cluster=$CK/shm/gpu-cluster:0" timeout 60 target/release/cluster-host \
            --count 330 > "$CK/cluster-$name.log" 2>&1
        rc=$?
    else
        cat "$CK/ivi-$name.log"; rc=1
    fi
    kill "$lpid"; wait "$lpid" 2>/dev/null
    tail -2 "$CK/ivi-$name.log"
    return $rc
}

ck_cluster_ratio() {
    # The issue's cluster-first check: the cluster's frame period while the
    # IVI floods the GPU (ivi-flood: 2000 draws and a 4 MiB texture upload
    # a frame, through the C ABI library over the IVI's region) over its
    # period while the IVI burns the CPU share the flood measured for
    # itself with no GPU call (ivi-busy), from the cluster's statistics
    # lines (10 windows of 30 frames, the median window's mean period):
    # at most 1.1, and at most 20 % of its frames presented after their
    # 33 ms slot under the flood. The CPU load being the same, what
    # differs is the GPU's work; a cluster served first waits at most for
    # the flood's batch in flight (about batch_ms, 4 ms), well inside its
    # slot. Measured: docs/cockpit.md, step 10.
    local ivi cl rc=0
    ivi=$(ck_pid ivi); cl=$(ck_pid cluster)
    kill -STOP "$ivi" "$cl"
    ck_ratio_run flood env TESSERA_SHM="gpu-ivi=$CK/shm/gpu-ivi:0" \
        LD_LIBRARY_PATH="$PWD/$GPU_OUT/lib" "$GPU_OUT/bin/ivi-flood" || rc=1
    [ $rc = 0 ] && { ck_ratio_run busy "$GPU_OUT/bin/ivi-busy" --duty-file "$CK/ivi-flood.log" || rc=1; }
    kill -CONT "$ivi" "$cl"
    [ $rc = 0 ] && python3 gpu-share/ci/cluster_stats.py ratio "$CK/cluster-flood.log" \
        "$CK/cluster-busy.log" --bound 1.1 --max-missed-pct 20 || return 1
    # Both supervised clients lost their regions to the newcomers: they
    # connect again (the IVI by restarting).
    ck_wait 30 ck_live crt
}

ck_native_twin() {
    # cluster-native, the cluster's frame as a plain GLES2 program (what
    # `cargo xtask bench cockpit` runs natively in the service VM), draws
    # exactly the cluster's frames: frames with either telltale and many
    # stamp bits, against the cluster program's own references.
    local n
    for n in 0 17 1234 40015; do
        target/release/cluster-host --socket "$CK_REF_SOCK" --ref "$n" "$CK/twin-ref.raw" >/dev/null 2>&1 || return 1
        "$GPU_OUT/bin/cluster-native" --ref "$n" "$CK/twin.raw" || return 1
        cmp "$CK/twin-ref.raw" "$CK/twin.raw" || return 1
        echo "frame $n: identical"
    done
}

ck_programs() {
    # gpu-share's test programs over the IVI's region (the cross-VM
    # transport) print what they print natively; the real IVI waits.
    local ivi p n r ok=0
    ivi=$(ck_pid ivi)
    kill -STOP "$ivi"
    for p in $PROGS; do
        n=$("$GPU_OUT/bin/$p" 2>&1)
        r=$(TESSERA_SHM="gpu-ivi=$CK/shm/gpu-ivi:0" gpu_remote timeout 60 "$GPU_OUT/bin/$p" 2>&1)
        if [ "$n" = "$r" ]; then echo "$p: identical"; else echo "$p: DIFFERS"; diff <(echo "$n") <(echo "$r") | head -5; ok=1; fi
    done
    kill -CONT "$ivi"
    [ $ok = 0 ] && ck_wait 30 ck_live pr
}

ck_steps() {
    step "cockpit: build cluster, IVI, tessera-shm-host" ck_build
    if ! step "cockpit: start server, cluster and IVI over emulated regions" ck_start; then
        ck_stop; return
    fi
    step "cockpit: each area matches the reference of its stamped frame" ck_matches
    step "cockpit: the check fails on a wrong layout and a stale frame" ck_fails_when_broken
    step "cockpit: frames advance in every area" ck_advance
    step "cockpit: cluster-native draws the cluster's frames" ck_native_twin
    step "cockpit: the gpu-share test programs across the transport match native" ck_programs
    step "cockpit: a client that stops presenting gets no signal" ck_no_signal
    step "cockpit: a cluster restart is noticed and recovers" ck_client_restart
    step "cockpit: a server restart is noticed, both clients recover" ck_server_restart
    step "cockpit: a hostile IVI stream ends only its own session" ck_hostile
    step "cockpit: the cluster goes first while the IVI floods the GPU" ck_cluster_first
    step "cockpit: cluster period under ivi-flood within 1.1 times under ivi-busy" ck_cluster_ratio
    ck_stop
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    cd "$(dirname "$0")/../.."
    . gpu-share/ci/common.sh
    PASSED=0 FAILED=0
    step() {
        local name=$1; shift
        echo "=== $name"
        if "$@"; then PASSED=$((PASSED + 1)); echo "--- ok: $name"
        else FAILED=$((FAILED + 1)); echo "--- FAILED: $name"; fi
    }
    trap ck_stop EXIT
    ck_steps
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
fi
