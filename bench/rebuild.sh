#!/usr/bin/env bash
# Rebuild and resync speed of a raid5 on 4 tmpfs members, against the
# members' own sequential read speed measured in the same run:
#
#   reference  fio sequential read of the 4 member files at once (one job per
#              member), with io_uring and with psync; per-member MiB/s =
#              aggregate / 4 of the faster
#   initial    the initial resync of a new array on members full of random
#              data: reads every member and rewrites parity on every stripe
#   full pass  `sync_action repair` on the now consistent array: reads and
#              compares every member (what a full resync does on consistent
#              data, and the read side of a rebuild)
#   rebuild    `umd manage --fail` one member, `--remove` it, `--add` a
#              fresh spare (a fifth file, filled with random data like the
#              others): the recovery reads the 3 survivors and writes the
#              spare; a `check` after it must find no mismatch
#   bitmap     after `kill -9` during a small write set, the resync of the
#              dirty bitmap chunks only, vs the full pass
#
# Pass times come from umd's own log (sync started/finished). Prints the
# ratios; target: per-member pass speed >= 0.8 x the members' read speed.
# Exits 0 whatever the numbers; non-zero only on errors.
#
# Usage: bench/rebuild.sh [--quick] [--help]
# Environment:
#   BENCH_MEMBER_MIB  size of each member file in MiB (default 1024; --quick: 128)
#   BENCH_WRITES      4 KiB writes in the small write set (default 32)
#   BENCH_KEEP=1      keep the work directory and logs
#   UMD_BIN           umd binary to use; otherwise `cargo build --release -p umd`
set -euo pipefail

BENCH_NAME=rebuild
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_args "$@"
if [[ $quick == 1 ]]; then
    MEMBER_MIB=${BENCH_MEMBER_MIB:-128}
else
    MEMBER_MIB=${BENCH_MEMBER_MIB:-1024}
fi
WRITES=${BENCH_WRITES:-32}
MEMBERS=4
# A bitmap chunk small enough that a small write set dirties little.
BITMAP_CHUNK_KIB=4096
# Lifts md's default sync_speed_max (200000 KiB/s) for the measured passes.
SPEED_MAX_KIB=2000000000

[[ $MEMBER_MIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_MEMBER_MIB must be a positive integer"
[[ $WRITES =~ ^[1-9][0-9]*$ ]] || die "BENCH_WRITES must be a positive integer"
((MEMBER_MIB >= 64)) || die "BENCH_MEMBER_MIB must be at least 64"
need fio "fio"
need qemu-io "qemu-io (qemu-utils) for the small write set"
need python3 "python3 to read fio's JSON and umd's log times"

repo=$(cd "$(dirname "$0")/.." && pwd)
bench_umd "$repo"

work=/dev/shm/umd-rebuild-$$
server=""
cleanup() {
    if [[ -n $server ]] && kill -0 "$server" 2>/dev/null; then kill -9 "$server" 2>/dev/null || true; fi
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
mkdir -p "$work/run"
export UMD_RUN_DIR=$work/run
ctl_path=$work/run/r5.ctl
members=()
for i in $(seq 0 $((MEMBERS - 1))); do members+=("$work/m$i"); done
# The spare the rebuild goes to.
spare=$work/spare

ctl() { "$UMD" ctl --control "$ctl_path" "$@"; }

# Start `umd run` (info log to $1), wait for its sockets, lift the speed limit.
start() {
    rm -f "$ctl_path" "$work/r5.nbd"
    UMD_LOG=info "$UMD" run --nbd "unix:$work/r5.nbd" --control "$ctl_path" "${members[@]}" \
        2>"$1" >/dev/null &
    server=$!
    for _ in $(seq 1 300); do
        [[ -S $ctl_path && -S $work/r5.nbd ]] && break
        kill -0 "$server" 2>/dev/null || die "umd run exited early: $(tail -3 "$1")"
        sleep 0.02
    done
    [[ -S $ctl_path ]] || die "umd run did not open its control socket"
    ctl set sync_speed_max "$SPEED_MAX_KIB"
}

wait_idle() {
    for _ in $(seq 1 6000); do
        [[ $(ctl get sync_action) == idle ]] && return 0
        sleep 0.05
    done
    die "sync did not finish"
}

stop() {
    kill -TERM "$server"
    wait "$server" || die "umd run did not stop cleanly"
    server=""
}

# Seconds of the Nth (1-based) sync pass in a umd log: "sync started" to
# "sync finished", from tracing's RFC 3339 timestamps.
pass_seconds() {
    python3 - "$1" "$2" <<'EOF'
import sys, datetime
log, nth = sys.argv[1], int(sys.argv[2])
def ts(line):
    return datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
starts, ends = [], []
for line in open(log, errors="replace"):
    if "sync started" in line: starts.append(ts(line))
    if "sync finished" in line: ends.append(ts(line))
if len(starts) < nth or len(ends) < nth:
    sys.exit(f"pass {nth} not found in {log}")
print(f"{(ends[nth - 1] - starts[nth - 1]).total_seconds():.4f}")
EOF
}

echo "members: $MEMBERS x $MEMBER_MIB MiB in $work (tmpfs); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Members full of random data (different in each member).
fill_jobs=()
for m in "${members[@]}" "$spare"; do fill_jobs+=(--name="fill-$(basename "$m")" --filename="$m"); done
fio --rw=write --bs=1M --size="${MEMBER_MIB}M" --refill_buffers=1 --randrepeat=0 \
    --ioengine=psync "${fill_jobs[@]}" >/dev/null || die "fio fill failed"

# Reference: sequential read of the 4 members at once, with io_uring (depth 8)
# and with plain pread (psync); the faster of the two is the reference.
read_jobs=()
for m in "${members[@]}"; do read_jobs+=(--name="read-$(basename "$m")" --filename="$m"); done
for engine in io_uring psync; do
    fio --rw=read --bs=1M --size="${MEMBER_MIB}M" --ioengine=$engine --iodepth=8 \
        --group_reporting --output-format=json --output="$work/fio-read-$engine.json" \
        "${read_jobs[@]}" || die "fio read ($engine) failed"
done
ref_member_mibs=$(python3 -c '
import json, sys
def per_member(path):
    j = json.load(open(path))
    return sum(job["read"]["bw_bytes"] for job in j["jobs"]) / 4 / 2**20
uring, psync = per_member(sys.argv[1]), per_member(sys.argv[2])
print(f"fio seq read per member: io_uring {uring:.1f} MiB/s, psync {psync:.1f} MiB/s", file=sys.stderr)
print(f"{max(uring, psync):.1f}")' "$work/fio-read-io_uring.json" "$work/fio-read-psync.json")

"$UMD" create --level 5 --raid-devices $MEMBERS --chunk 512 --bitmap internal \
    --bitmap-chunk $BITMAP_CHUNK_KIB "${members[@]}" >"$work/create.log" 2>&1 || die "umd create failed"

start "$work/run1.log"
wait_idle
component_kib=$(ctl get component_size)
ctl set sync_action repair
wait_idle
repair_mismatch=$(ctl get mismatch_cnt)
[[ $repair_mismatch == 0 ]] || die "the full pass after the initial resync found $repair_mismatch mismatches"
# Rebuild: lose m2, hot-add the spare, recover onto it.
"$UMD" manage --fail m2 "$ctl_path" >>"$work/manage.log" 2>&1 || die "umd manage --fail failed"
"$UMD" manage --remove m2 "$ctl_path" >>"$work/manage.log" 2>&1 || die "umd manage --remove failed"
"$UMD" manage --add "$spare" "$ctl_path" >>"$work/manage.log" 2>&1 || die "umd manage --add failed"
for _ in $(seq 1 600); do
    [[ $(ctl get degraded) == 0 && $(ctl get sync_action) == idle ]] && break
    sleep 0.05
done
[[ $(ctl get degraded) == 0 ]] || die "the rebuild onto the spare did not finish"
ctl set sync_action check
wait_idle
rebuild_mismatch=$(ctl get mismatch_cnt)
[[ $rebuild_mismatch == 0 ]] || die "check after the rebuild found $rebuild_mismatch mismatches"
stop
initial_s=$(pass_seconds "$work/run1.log" 1)
full_s=$(pass_seconds "$work/run1.log" 2)
rebuild_s=$(pass_seconds "$work/run1.log" 3)
# The array now runs on m0, m1, m3 and the spare.
members=("${members[0]}" "${members[1]}" "${members[3]}" "$spare")

# kill -9 in the middle of a small write set (the first 16 MiB of the array).
start "$work/run2.log"
qemu_cmds=()
for i in $(seq 0 $((WRITES - 1))); do
    qemu_cmds+=(-c "write -P $((i % 250 + 1)) $(((i * 509 % 4096) * 4096)) 4096")
done
qemu-io -f raw "nbd+unix:///?socket=$work/r5.nbd" "${qemu_cmds[@]}" >/dev/null || die "qemu-io failed"
kill -9 "$server"
wait "$server" 2>/dev/null || true
server=""

start "$work/run3.log"
wait_idle
ctl set sync_action check
wait_idle
check_mismatch=$(ctl get mismatch_cnt)
stop
bitmap_s=$(pass_seconds "$work/run3.log" 1)
dirty_line=$(grep -o 'resync of [0-9]* dirty bitmap chunks ([0-9]* of [0-9]* sectors)' "$work/run3.log" || echo "resync: (no bitmap line)")

python3 - "$component_kib" "$ref_member_mibs" "$initial_s" "$full_s" "$bitmap_s" "$dirty_line" "$check_mismatch" "$rebuild_s" <<'EOF'
import sys
kib, ref, initial, full, bitmap = (float(x) for x in sys.argv[1:6])
dirty, mismatch, rebuild = sys.argv[6], sys.argv[7], float(sys.argv[8])
mib = kib / 1024
def row(name, secs):
    speed = mib / secs
    print(f"{name:<34} {secs:8.3f} s  {speed:8.1f} MiB/s per member  ratio {speed / ref:5.2f}")
print(f"{'reference: fio seq read (faster)':<34} {'':>10}  {ref:8.1f} MiB/s per member")
row("initial resync", initial)
row("full pass (repair, no mismatches)", full)
row("rebuild onto a hot-added spare", rebuild)
print(f"{'bitmap resync after kill -9':<34} {bitmap:8.3f} s  ({dirty}); "
      f"{bitmap / full * 100:.2f}% of the full pass, {bitmap / initial * 100:.2f}% of the initial resync")
print(f"check after the bitmap resync: mismatch_cnt {mismatch}")
print("check after the rebuild: mismatch_cnt 0")
worst = mib / max(initial, full, rebuild) / ref
print(f"target: every pass >= 0.8 x member read speed: {'PASS' if worst >= 0.8 else 'BELOW'} (slowest {worst:.2f})")
EOF
