#!/usr/bin/env bash
# Real-process soak: `umd run` under fio verify load through NBD, killed with
# -9 at random moments and restarted, members failed and re-added, for a set
# time. Reports the bytes checked and the failures (must be 0).
#
# Each round: (1) fio writes a fresh pattern over region A with verify and a
# final fsync (acknowledged and flushed: it must survive anything); (2) a
# random-write storm runs on region B and umd is killed -9 at a random
# moment of it; (3) umd restarts (resync), fio re-verifies region A with the
# same seed; (4) now and then a member is failed and added back as a spare
# (recovery rebuilds it), then region A is verified again.
#
#   bench/soak.sh [SECONDS] [LEVEL]        default 300 s, raid5
#   UMD=path/to/umd to use a built binary (default: cargo build --profile sim)
set -euo pipefail

SECONDS_MAX=${1:-300}
LEVEL=${2:-5}
DISKS=4
[ "$LEVEL" = 1 ] && DISKS=2
WORK=$(mktemp -d /tmp/umd-soak.XXXXXX)
trap 'kill -9 ${UMD_PID:-} 2>/dev/null || true; rm -rf "$WORK"' EXIT

if [ -z "${UMD:-}" ]; then
    cargo build -q -p umd --profile sim
    UMD=${CARGO_TARGET_DIR:-target}/sim/umd
fi
for t in fio nbdinfo; do command -v $t >/dev/null || { echo "soak: needs $t" >&2; exit 2; }; done

MEMBERS=()
for i in $(seq 0 $((DISKS - 1))); do
    truncate -s 256M "$WORK/d$i"
    MEMBERS+=("$WORK/d$i")
done
"$UMD" create --level "$LEVEL" --raid-devices "$DISKS" --bitmap internal --force "${MEMBERS[@]}" >/dev/null
SOCK="$WORK/nbd.sock"
CTL="$WORK/array.ctl"

start_umd() {
    rm -f "$SOCK" "$CTL"
    "$UMD" run --nbd "unix:$SOCK" --control "$CTL" "${MEMBERS[@]}" >>"$WORK/umd.log" 2>&1 &
    UMD_PID=$!
    for _ in $(seq 1 200); do [ -S "$SOCK" ] && [ -S "$CTL" ] && return 0; sleep 0.05; done
    echo "soak: umd did not start; log:" >&2; tail -20 "$WORK/umd.log" >&2; exit 1
}
ctl() { "$UMD" ctl --control "$CTL" "$@"; }
wait_idle() {
    for _ in $(seq 1 1200); do
        [ "$(ctl get sync_action 2>/dev/null)" = idle ] && return 0
        sleep 0.1
    done
    echo "soak: sync never finished" >&2; return 1
}

URI="nbd+unix:///?socket=$SOCK"
start_umd
SIZE=$(nbdinfo --size "$URI")
HALF=$(( SIZE / 2 / 1048576 * 1048576 ))
REGION_A="--offset=0 --size=$((HALF / 2))"

fio_a() { # $1: seed, $2: write+verify | verify
    local mode=(--rw=randwrite --do_verify=1)
    [ "$2" = verify ] && mode=(--rw=randwrite --verify_only)
    fio --name=a --ioengine=nbd --uri="$URI" $REGION_A --bs=16k --iodepth=16 \
        --randseed="$1" --verify=crc32c --verify_fatal=1 --end_fsync=1 \
        "${mode[@]}" --output-format=terse >/dev/null 2>>"$WORK/fio.log"
}

rounds=0; checked=0; failures=0; kills=0; refails=0
end=$(( $(date +%s) + SECONDS_MAX ))
while [ "$(date +%s)" -lt "$end" ]; do
    rounds=$((rounds + 1)); seed=$((1000 + rounds))
    if ! fio_a "$seed" write; then failures=$((failures + 1)); echo "round $rounds: write+verify failed" >&2; fi
    checked=$((checked + HALF / 2))
    fio --name=b --ioengine=nbd --uri="$URI" --offset="$HALF" --size=$((SIZE - HALF)) \
        --rw=randwrite --bs=4k --iodepth=32 --time_based --runtime=30 >/dev/null 2>&1 &
    STORM=$!
    sleep "0.$(( RANDOM % 9 + 1 ))$(( RANDOM % 10 ))"
    kill -9 "$UMD_PID"; wait "$UMD_PID" 2>/dev/null || true; kills=$((kills + 1))
    kill "$STORM" 2>/dev/null || true; wait "$STORM" 2>/dev/null || true
    start_umd; wait_idle || failures=$((failures + 1))
    if ! fio_a "$seed" verify; then failures=$((failures + 1)); echo "round $rounds: data lost after kill -9" >&2; fi
    checked=$((checked + HALF / 2))
    if [ $((rounds % 3)) = 0 ] && [ "$LEVEL" != 0 ]; then
        victim="d$(( RANDOM % DISKS ))"
        if ctl set "dev-$victim/state" faulty && ctl set "dev-$victim/state" remove \
            && ctl set new_dev "$WORK/$victim"; then
            refails=$((refails + 1)); wait_idle || failures=$((failures + 1))
        else
            echo "round $rounds: could not fail and re-add $victim" >&2
        fi
        if ! fio_a "$seed" verify; then failures=$((failures + 1)); echo "round $rounds: data lost after re-add" >&2; fi
        checked=$((checked + HALF / 2))
    fi
done
echo "soak raid$LEVEL: $rounds rounds, $kills kill -9, $refails fail+re-add, $((checked / 1048576)) MiB verified, $failures failures"
[ "$failures" = 0 ]
