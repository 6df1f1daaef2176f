#!/usr/bin/env bash
# End-to-end benchmark of umd's NBD export against its references, in one run:
#
#   limit   fio (ioengine=io_uring) straight on the member files in tmpfs
#   nbdkit  `nbdkit file` serving one tmpfs file of the members' total size
#   raid0   `umd run` on 4 members, chunk 512 KiB
#   raid5   `umd run` on 4 members, chunk 512 KiB, left-symmetric
#
# The NBD targets are all driven by the same fio jobs (ioengine=nbd) over a
# Unix socket. Prints one row per workload and umd's ratios, then the targets
# with PASS/BELOW. Exits 0 whatever the ratios; non-zero only on errors (a
# tool fails, a server does not start or stop cleanly, fio reports an error
# or a data verification failure). See bench/README.md.
#
# Usage: bench/nbd-e2e.sh [--quick] [--help]
# Environment:
#   BENCH_SECONDS     measured seconds per workload (default 10; --quick: 3)
#   BENCH_MEMBER_MIB  size of each member file in MiB (default 256; --quick: 64)
#   BENCH_TARGETS     subset of "limit nbdkit raid0 raid5" (default: all)
#   BENCH_REPEAT      runs of each workload on each target, interleaved; the
#                     table shows the median (default 1)
#   BENCH_KEEP=1      keep the work directory and server logs
#   UMD_BIN           umd binary to use; otherwise `cargo build --release -p umd`
set -euo pipefail

BENCH_NAME=nbd-e2e
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_args "$@"

if [[ $quick == 1 ]]; then
    SECONDS_PER_JOB=${BENCH_SECONDS:-3}
    MEMBER_MIB=${BENCH_MEMBER_MIB:-64}
else
    SECONDS_PER_JOB=${BENCH_SECONDS:-10}
    MEMBER_MIB=${BENCH_MEMBER_MIB:-256}
fi
TARGETS=${BENCH_TARGETS:-limit nbdkit raid0 raid5}
REPEAT=${BENCH_REPEAT:-1}
RAMP=2
MEMBERS=4
CHUNK_KIB=512
# raid5 full stripe: (members - 1) data chunks.
STRIPE_KIB=$(((MEMBERS - 1) * CHUNK_KIB))
# Bytes of every fio data-verification pass on the umd arrays.
VERIFY_MIB=32

[[ $SECONDS_PER_JOB =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer"
[[ $MEMBER_MIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_MEMBER_MIB must be a positive integer"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEAT must be a positive integer"
((MEMBER_MIB >= 16)) || die "BENCH_MEMBER_MIB must be at least 16"
for t in $TARGETS; do
    case "$t" in limit | nbdkit | raid0 | raid5) ;; *) die "unknown target in BENCH_TARGETS: $t" ;; esac
done
want() { [[ " $TARGETS " == *" $1 "* ]]; }

need fio "fio with the io_uring and nbd engines"
if want nbdkit; then need nbdkit "nbdkit with the file plugin"; fi
if command -v python3 >/dev/null 2>&1; then
    JSON=python3
elif command -v jq >/dev/null 2>&1; then
    JSON=jq
else
    die "need python3 or jq to read fio's JSON output"
fi
engines=$(fio --enghelp 2>&1 || true)
grep -qw io_uring <<<"$engines" || die "this fio has no io_uring engine"
if want nbdkit || want raid0 || want raid5; then
    grep -qw nbd <<<"$engines" || die "this fio has no nbd engine (build fio with libnbd)"
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
UMD=""
if want raid0 || want raid5; then
    bench_umd "$repo"
fi

DIR=/dev/shm/umd-bench-$$
SERVER_PID=""
SERVER_KIND=""
SERVER_LOG=""
errors=0

cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        echo "nbd-e2e: kept $DIR" >&2
    else
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$DIR"
export UMD_RUN_DIR=$DIR

# Records an error (the run goes on so the other columns still get measured).
fail() {
    echo "nbd-e2e: ERROR: $*" >&2
    errors=$((errors + 1))
}

# Prints the tail of the current server's log, to explain a failure.
server_log_tail() {
    if [[ -n $SERVER_LOG && -s $SERVER_LOG ]]; then
        echo "--- last lines of $SERVER_KIND log:" >&2
        tail -n 15 "$SERVER_LOG" >&2
        echo "---" >&2
    fi
}

# start_server KIND: nbdkit serves $DIR/nbdkit.img; raid0/raid5 run umd on
# $DIR/KIND-m*. Returns when the sockets exist; non-zero if the server died.
start_server() {
    local kind=$1 sock=$DIR/$1.sock ctl=$DIR/$1.ctl i
    SERVER_KIND=$kind
    SERVER_LOG=$DIR/$kind.log
    rm -f "$sock" "$ctl"
    if [[ $kind == nbdkit ]]; then
        # --exit-with-parent implies --foreground, hence the '&'.
        nbdkit -U "$sock" --exit-with-parent file "$DIR/nbdkit.img" >>"$SERVER_LOG" 2>&1 &
    else
        local members
        mapfile -t members < <(member_files "$kind")
        "$UMD" run --nbd "unix:$sock" --control "$ctl" "${members[@]}" >>"$SERVER_LOG" 2>&1 &
    fi
    SERVER_PID=$!
    for ((i = 0; i < 200; i++)); do
        if [[ -S $sock && ($kind == nbdkit || -S $ctl) ]]; then
            URI="nbd+unix:///?socket=$sock"
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" || true
            SERVER_PID=""
            fail "$kind server exited before its sockets appeared"
            server_log_tail
            return 1
        fi
        sleep 0.05
    done
    fail "$kind server: sockets did not appear within 10 s"
    server_log_tail
    stop_server
    return 1
}

# Stops the server with SIGTERM and waits; umd must exit 0 (a clean stop).
stop_server() {
    local rc=0
    [[ -n $SERVER_PID ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
    if [[ $SERVER_KIND != nbdkit && $rc != 0 ]]; then
        fail "umd ($SERVER_KIND) exited with status $rc after SIGTERM"
        server_log_tail
        return 1
    fi
    return 0
}

# json_metric FILE read|write iops|mibs|bytes: the group-reported value from fio's
# JSON (fio may print informational lines before the JSON document).
json_metric() {
    local file=$1 dir=$2 kind=$3
    if [[ $JSON == python3 ]]; then
        python3 - "$file" "$dir" "$kind" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
doc = json.loads(text[text.index("{"):])
job = doc["jobs"][0]
if job.get("error", 0):
    sys.exit("fio job error %s" % job["error"])
side = job[sys.argv[2]]
kind = sys.argv[3]
if kind == "bytes":
    print(side["io_bytes"])
else:
    print("%.1f" % (side["iops"] if kind == "iops" else side["bw_bytes"] / 1048576.0))
EOF
    else
        sed -n '/^{/,$p' "$file" | jq -r --arg d "$dir" --arg k "$kind" '
            .jobs[0] | if .error != 0 then error("fio job error \(.error)") else . end
            | .[$d] | if $k == "bytes" then .io_bytes
                      elif $k == "iops" then (.iops * 10 | round / 10)
                      else (.bw_bytes / 104857.6 | round / 10) end'
    fi
}

# run_fio NAME FIO-ARGS...: runs fio, stores the JSON in $DIR/NAME.json.
run_fio() {
    local name=$1
    shift
    # A generous timeout: a server that stops answering must not hang the run.
    # fio runs in the work directory so any state file it leaves goes with it.
    if ! (cd "$DIR" && timeout "$FIO_TIMEOUT" fio --name="$name" --output-format=json --output="$DIR/$name.json" "$@" \
        >"$DIR/$name.out" 2>&1); then
        fail "fio $name failed:"
        tail -n 20 "$DIR/$name.out" >&2 || true
        grep -v '^ ' "$DIR/$name.json" 2>/dev/null | grep -i -m 5 'verify\|error' >&2 || true
        return 1
    fi
}

# Workloads: name, rw, bs, iodepth, NBD jobs, metric.
WORKLOADS=(randread4k seqread1m seqwrite1m fullstripe)
declare -A W_RW=([randread4k]=randread [seqread1m]=read [seqwrite1m]=write [fullstripe]=write)
declare -A W_BS=([randread4k]=4k [seqread1m]=1m [seqwrite1m]=1m [fullstripe]=${STRIPE_KIB}k)
declare -A W_BS_BYTES=([randread4k]=4096 [seqread1m]=1048576 [seqwrite1m]=1048576
    [fullstripe]=$((STRIPE_KIB * 1024)))
declare -A W_QD=([randread4k]=32 [seqread1m]=8 [seqwrite1m]=8 [fullstripe]=8)
declare -A W_JOBS=([randread4k]=4 [seqread1m]=2 [seqwrite1m]=2 [fullstripe]=2)
declare -A W_LABEL=([randread4k]="4k randread, qd32 x4 (IOPS)"
    [seqread1m]="1M seq read, qd8 x2 (MiB/s)" [seqwrite1m]="1M seq write, qd8 x2 (MiB/s)"
    [fullstripe]="${STRIPE_KIB}k seq write, qd8 x2 (MiB/s)")
declare -A RESULT=()

# record KIND WORKLOAD VALUE: one run's result; RESULT holds the median so far
# (the lower middle value for an even count), RUNS every value in run order.
declare -A RUNS=()
record() {
    local key=$1,$2
    RUNS[$key]="${RUNS[$key]:+${RUNS[$key]} }$3"
    # shellcheck disable=SC2086
    RESULT[$key]=$(printf '%s\n' ${RUNS[$key]} | sort -g | awk '{v[NR] = $1} END { print v[int((NR + 1) / 2)] }')
}

metric_kind() { [[ ${W_RW[$1]} == randread ]] && echo iops || echo mibs; }
metric_dir() { [[ ${W_RW[$1]} == write ]] && echo write || echo read; }

FIO_TIMEOUT=$((SECONDS_PER_JOB + RAMP + 120))
TIMED=(--time_based --runtime="$SECONDS_PER_JOB" --ramp_time="$RAMP")

# Every target is set up first (files, array, fill, data check), then each
# workload runs on all targets back to back, so that a change in the load of
# the machine during the run skews one row rather than one column.

# member_files KIND: the member paths of a umd target, in role order.
member_files() {
    local i
    for ((i = 0; i < MEMBERS; i++)); do echo "$DIR/$1-m$i"; done
}

# --- limit: fio io_uring straight on the member files ------------------------
# One job per member file (numjobs = members, job k on member k, via
# filename_format), each job with the workload's block size and iodepth.
# fio expands $jobnum itself.
# shellcheck disable=SC2016
LIMIT_FMT=$DIR/limit-m'$jobnum'
setup_limit() {
    echo "== limit: fio io_uring on $MEMBERS member files of $MEMBER_MIB MiB" >&2
    run_fio limit-fill --ioengine=io_uring --filename_format="$LIMIT_FMT" \
        --numjobs="$MEMBERS" --rw=write --bs=1m --iodepth=8 --size="${MEMBER_MIB}m" \
        --group_reporting
}

limit_job() {
    local w=$1 v
    run_fio "limit-$w" --ioengine=io_uring --filename_format="$LIMIT_FMT" \
        --numjobs="$MEMBERS" --rw="${W_RW[$w]}" --bs="${W_BS[$w]}" --iodepth="${W_QD[$w]}" \
        --size="${MEMBER_MIB}m" --group_reporting "${TIMED[@]}" || return 1
    v=$(json_metric "$DIR/limit-$w.json" "$(metric_dir "$w")" "$(metric_kind "$w")") || return 1
    record limit "$w" "$v"
}

# nbd_job KIND WORKLOAD: one fio nbd run of WORKLOAD against a fresh server.
# Sequential jobs each get their own stretch of the export (a multiple of
# the block size, so a full-stripe write stays stripe-aligned).
nbd_job() {
    local kind=$1 w=$2 size=${EXPORT_SIZE[$1]} jobs region v
    jobs=${W_JOBS[$w]}
    start_server "$kind" || return 1
    local args=(--ioengine=nbd --uri="$URI" --rw="${W_RW[$w]}" --bs="${W_BS[$w]}"
        --iodepth="${W_QD[$w]}" --numjobs="$jobs" --group_reporting)
    if [[ ${W_RW[$w]} != randread ]]; then
        region=$((size / jobs / W_BS_BYTES[$w] * W_BS_BYTES[$w]))
        args+=(--size="$region" --offset_increment="$region")
    fi
    run_fio "$kind-$w" "${args[@]}" "${TIMED[@]}" || { stop_server || true; return 1; }
    stop_server || return 1
    v=$(json_metric "$DIR/$kind-$w.json" "$(metric_dir "$w")" "$(metric_kind "$w")") || return 1
    record "$kind" "$w" "$v"
}

# setup_nbd KIND: create the backing file or the array, fill the export once,
# check umd's data. Sets EXPORT_SIZE[KIND]; non-zero if KIND is unusable.
declare -A EXPORT_SIZE=()
setup_nbd() {
    local kind=$1 size
    if [[ $kind == nbdkit ]]; then
        echo "== nbdkit: file plugin on one $((MEMBER_MIB * MEMBERS)) MiB file" >&2
        truncate -s "$((MEMBER_MIB * MEMBERS))m" "$DIR/nbdkit.img"
    else
        local level=${kind#raid} members
        echo "== umd $kind: $MEMBERS members of $MEMBER_MIB MiB, chunk $CHUNK_KIB KiB" >&2
        mapfile -t members < <(member_files "$kind")
        truncate -s "${MEMBER_MIB}m" "${members[@]}"
        local create=(create --level "$level" --raid-devices "$MEMBERS" --chunk "$CHUNK_KIB")
        [[ $level == 5 ]] && create+=(--layout left-symmetric)
        if ! "$UMD" "${create[@]}" --assume-clean "${members[@]}" \
            >"$DIR/$kind-create.log" 2>&1; then
            fail "umd ${create[*]} failed: $(tail -n 3 "$DIR/$kind-create.log")"
            return 1
        fi
    fi

    # Fill the whole export once (fio sizes an nbd job from the export), so
    # reads hit real data; the bytes written give the export size (every
    # export here is a multiple of the 512 KiB fill block).
    echo "   filling the export once" >&2
    start_server "$kind" || return 1
    if ! run_fio "$kind-fill" --ioengine=nbd --uri="$URI" --rw=write --bs=512k --iodepth=16; then
        stop_server || true
        return 1
    fi
    stop_server || return 1
    size=$(json_metric "$DIR/$kind-fill.json" write bytes) || { fail "$kind: fill result"; return 1; }
    echo "   export size $((size / 1048576)) MiB" >&2
    EXPORT_SIZE[$kind]=$size

    if [[ $kind != nbdkit ]]; then
        # Data check: random-size random writes read back and checksummed in
        # the same server run, then checked again by a fresh `umd run`.
        local vsize=$((VERIFY_MIB * 1048576)) ok=1
        ((vsize <= size)) || vsize=$size
        local vargs=(--ioengine=nbd --rw=randwrite --bsrange=4k-"${STRIPE_KIB}"k
            --iodepth=8 --size="$vsize" --verify=crc32c --verify_fatal=1 --randseed=4242 --verify_state_save=0)
        echo "   verifying data (fio verify=crc32c over $((vsize / 1048576)) MiB, twice)" >&2
        start_server "$kind" || return 1
        run_fio "$kind-verify" "${vargs[@]}" --uri="$URI" || ok=0
        stop_server || ok=0
        if [[ $ok == 1 ]]; then
            start_server "$kind" || return 1
            run_fio "$kind-reverify" "${vargs[@]}" --uri="$URI" --verify_only=1 || ok=0
            stop_server || ok=0
        fi
        # Wrong data is reported but the speed is still measured.
        [[ $ok == 1 ]] || fail "umd $kind: data verification failed (see above)"
    fi
}

# Other work on the machine skews every column; the load average is printed with the table.
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
echo "nbd-e2e: ${SECONDS_PER_JOB}s per workload (+${RAMP}s ramp), members ${MEMBER_MIB} MiB," \
    "targets: $TARGETS, dir $DIR" >&2
ready=()
for kind in limit nbdkit raid0 raid5; do
    want "$kind" || continue
    if [[ $kind == limit ]]; then
        setup_limit && ready+=(limit)
    else
        setup_nbd "$kind" && ready+=("$kind")
    fi
done
for w in "${WORKLOADS[@]}"; do
    for ((r = 1; r <= REPEAT; r++)); do
        echo "== ${W_LABEL[$w]}: ${ready[*]} (run $r of $REPEAT)" >&2
        for kind in "${ready[@]}"; do
            if [[ $kind == limit ]]; then
                limit_job "$w" || fail "limit $w: no result"
            else
                nbd_job "$kind" "$w" || fail "$kind $w: no result"
            fi
        done
    done
done

# --- report ------------------------------------------------------------------
val() { echo "${RESULT[$1,$2]:--}"; }
# ratio A B: A/B with two decimals, '-' when either is missing.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}
# verdict RATIO TARGET: PASS / BELOW / n/a.
verdict() {
    awk -v r="$1" -v t="$2" 'BEGIN {
        if (r == "-") print "n/a"; else if (r + 0 >= t + 0) print "PASS"; else print "BELOW" }'
}

echo
echo "umd NBD export vs references: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
    "members $MEMBERS x $MEMBER_MIB MiB in tmpfs, ${SECONDS_PER_JOB}s per workload, $REPEAT run(s) each"
echo "load average at start: $load_start; at end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")"
fmt="%-32s %10s %10s %10s %10s %9s %9s %9s %9s\n"
# shellcheck disable=SC2059
printf "$fmt" workload limit nbdkit raid0 raid5 r0/nbdkit r5/nbdkit r0/limit r5/limit
for w in "${WORKLOADS[@]}"; do
    l=$(val limit "$w") n=$(val nbdkit "$w") r0=$(val raid0 "$w") r5=$(val raid5 "$w")
    # shellcheck disable=SC2059
    printf "$fmt" "${W_LABEL[$w]}" "$l" "$n" "$r0" "$r5" \
        "$(ratio "$r0" "$n")" "$(ratio "$r5" "$n")" "$(ratio "$r0" "$l")" "$(ratio "$r5" "$l")"
done
fs=$(ratio "$(val raid5 fullstripe)" "$(val raid0 seqwrite1m)")
echo "raid5 full-stripe write / raid0 1M seq write: $fs"
if ((REPEAT > 1)); then
    echo
    echo "every run (the table shows medians):"
    for w in "${WORKLOADS[@]}"; do
        for kind in limit nbdkit raid0 raid5; do
            [[ -n ${RUNS[$kind,$w]:-} ]] && printf "  %-32s %-7s %s\n" "${W_LABEL[$w]}" "$kind" "${RUNS[$kind,$w]}"
        done
    done
fi

echo
echo "targets:"
tfmt="  %-46s %7s  >= %-5s %s\n"
for lvl in raid0 raid5; do
    r=$(ratio "$(val "$lvl" randread4k)" "$(val nbdkit randread4k)")
    # shellcheck disable=SC2059
    printf "$tfmt" "$lvl 4k random read IOPS / nbdkit" "$r" 1.5 "$(verdict "$r" 1.5)"
    r=$(ratio "$(val "$lvl" seqread1m)" "$(val nbdkit seqread1m)")
    # shellcheck disable=SC2059
    printf "$tfmt" "$lvl 1M sequential read / nbdkit" "$r" 1.0 "$(verdict "$r" 1.0)"
    r=$(ratio "$(val "$lvl" seqwrite1m)" "$(val nbdkit seqwrite1m)")
    # shellcheck disable=SC2059
    printf "$tfmt" "$lvl 1M sequential write / nbdkit" "$r" 1.0 "$(verdict "$r" 1.0)"
done
# shellcheck disable=SC2059
printf "$tfmt" "raid5 full-stripe write / raid0 seq write" "$fs" 0.8 "$(verdict "$fs" 0.8)"

if ((errors > 0)); then
    echo "nbd-e2e: $errors error(s); see the messages above" >&2
    exit 1
fi
