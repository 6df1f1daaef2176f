#!/usr/bin/env bash
# Real-process soak: `umd run` under fio verify load through NBD, killed -9
# at random moments and restarted, with members failed and re-added.
#
#   bench/soak.sh [--seconds S] [--level 1|4|5|6|10] [--seed N] [--metadata native|ddf]
#
# --metadata ddf: the array is a virtual disk of a DDF container made with
# one more disk, a global spare; `umd run` starts `umd mon`, the manager. A
# kill -9 takes the engine down and its manager leaves after it; the restart
# starts both. A failed member is rebuilt onto the global spare by the
# manager, and a fresh blank disk is then given to the running container
# (`umd manage --add`) as the next round's spare.
#
# Each round:
#   1. fio writes a fresh pattern over region A (the first half of the export)
#      with verify=crc32c, and finishes: every one of those writes was
#      acknowledged.
#   2. fio writes random blocks over region B (the second half) while, at a
#      random moment, the round's fault happens:
#        kill   umd is killed with SIGKILL mid-write, then started again; it
#               must find the array dirty and resync it;
#        fail   a random member is failed (dev-*/state faulty) mid-write, the
#               array goes on degraded, then the member is removed and added
#               back and rebuilt (needs `umd manage`; skipped without it).
#   3. Region A is read back by fio (verify_only) through a server that went
#      through the fault: every block must carry round's pattern.
#   4. Once the resync or rebuild is over, `check` must report mismatch_cnt 0.
#
# Killing the process, not the machine, loses nothing umd acknowledged: umd
# completes a write only after the members' pwrite returned, so even writes
# never flushed must survive. (Power loss, where only flushed writes count, is
# the simulator's job.)
#
# Prints a line per round and a summary: rounds, faults, blocks verified,
# failures. Exit status 0 only if there were no failures. Needs fio with the
# nbd engine. Files live in /dev/shm/umd-soak-PID, removed on exit unless
# SOAK_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_TOTAL=120
LEVEL=5
SEED=${SOAK_SEED:-$RANDOM}
METADATA=native
while [[ $# -gt 0 ]]; do
    case $1 in
    --seconds) SECONDS_TOTAL=$2; shift 2 ;;
    --level) LEVEL=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --metadata) METADATA=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds S] [--level L] [--seed N] [--metadata native|ddf]" >&2; exit 2 ;;
    esac
done
[[ $METADATA == native || $METADATA == ddf ]] || { echo "soak: --metadata native|ddf" >&2; exit 2; }
RANDOM=$SEED

for tool in fio nbdinfo numfmt; do
    command -v $tool >/dev/null || { echo "soak: $tool is needed" >&2; exit 2; }
done
if [[ -z ${UMD_BIN:-} ]]; then
    cargo build --release -q -p umd
    UMD_BIN=${CARGO_TARGET_DIR:-target}/release/umd
fi
UMD=$(realpath "$UMD_BIN")

case $LEVEL in
1) N=2 ;; 4 | 5) N=4 ;; 6) N=5 ;; 10) N=4 ;;
*) echo "soak: level must be 1, 4, 5, 6 or 10" >&2; exit 2 ;;
esac
MEMBER_MIB=${SOAK_MEMBER_MIB:-64}
# DDF keeps 32 MiB of metadata at the end of every disk.
[[ $METADATA == ddf ]] && MEMBER_MIB=${SOAK_MEMBER_MIB:-96}

DIR=/dev/shm/umd-soak-$$
mkdir -p "$DIR"
export UMD_RUN_DIR=$DIR
SOCK=$DIR/nbd.sock CTL=$DIR/ctl LOG=$DIR/umd.log
PID=""
cleanup() {
    [[ -n $PID ]] && kill -9 "$PID" 2>/dev/null || true
    [[ ${SOAK_KEEP:-0} == 1 ]] && echo "soak: kept $DIR" || rm -rf "$DIR"
}
trap cleanup EXIT

MEMBERS=()
for ((i = 0; i < N; i++)); do
    truncate -s "${MEMBER_MIB}M" "$DIR/m$i"
    MEMBERS+=("$DIR/m$i")
done
chunk=(--chunk 64)
[[ $LEVEL == 1 ]] && chunk=()
# DISKS: what `umd run` is given (DDF: the container's disks, spare included).
# P: the array's attribute prefix on the control socket. URI: the export.
if [[ $METADATA == ddf ]]; then
    truncate -s "${MEMBER_MIB}M" "$DIR/s0"
    DISKS=("${MEMBERS[@]}" "$DIR/s0")
    {
        "$UMD" create --metadata ddf --level container --raid-devices $((N + 1)) "${DISKS[@]}" &&
            "$UMD" create --metadata ddf --level "$LEVEL" --raid-devices "$N" "${chunk[@]}" \
                --name soak "${MEMBERS[@]}"
    } >"$DIR/create.log" 2>&1 || { cat "$DIR/create.log" >&2; exit 1; }
    P=0/ URI="nbd+unix:///soak?socket=$SOCK"
else
    DISKS=("${MEMBERS[@]}")
    "$UMD" create --level "$LEVEL" --raid-devices "$N" "${chunk[@]}" --bitmap internal \
        "${MEMBERS[@]}" >"$DIR/create.log" 2>&1 || { cat "$DIR/create.log" >&2; exit 1; }
    P="" URI="nbd+unix:///?socket=$SOCK"
fi

ctl() { "$UMD" ctl --control "$CTL" "$@"; }

start_umd() {
    rm -f "$SOCK" "$CTL"
    "$UMD" run --nbd "unix:$SOCK" --control "$CTL" "${DISKS[@]}" >>"$LOG" 2>&1 &
    PID=$!
    for ((i = 0; i < 400; i++)); do
        [[ -S $SOCK && -S $CTL ]] && return 0
        kill -0 "$PID" 2>/dev/null || { echo "soak: umd run exited; log:" >&2; tail -n 20 "$LOG" >&2; exit 1; }
        sleep 0.05
    done
    echo "soak: umd run did not come up in 20 s" >&2
    exit 1
}

# Waits until sync_action is idle (resync/recovery over), at most 10 minutes.
wait_idle() {
    local i
    for ((i = 0; i < 6000; i++)); do
        [[ $(ctl get "${P}sync_action") == idle ]] && return 0
        sleep 0.1
    done
    echo "soak: sync did not finish in 10 minutes" >&2
    return 1
}

fio_nbd() {
    fio --name=soak --ioengine=nbd --uri="$URI" \
        --output-format=terse --terse-version=3 "$@"
}

have_manage=0
"$UMD" manage --help >/dev/null 2>&1 && have_manage=1

start_umd
wait_idle
size=$(nbdinfo --size "$URI")
half=$(((size / 2) / (1024 * 1024) * (1024 * 1024)))
echo "soak: level $LEVEL ($METADATA) on $N x ${MEMBER_MIB} MiB, export $((size / 1048576)) MiB, seed $SEED, ${SECONDS_TOTAL}s"

rounds=0 kills=0 fails=0 verified=0 failures=0
deadline=$((SECONDS + SECONDS_TOTAL))
while ((SECONDS < deadline)); do
    rounds=$((rounds + 1))
    bss=(4k 16k 64k 256k)
    bs=${bss[$((RANDOM % 4))]}
    seed=$((SEED * 1000 + rounds))
    fault=kill
    ((have_manage == 1 && RANDOM % 3 == 0)) && fault=fail

    # 1. Region A: a complete, acknowledged pattern.
    if ! fio_nbd --rw=randwrite --bs="$bs" --offset=0 --size="$half" --iodepth=16 \
        --verify=crc32c --do_verify=0 --randseed="$seed" >"$DIR/a.out" 2>&1; then
        echo "round $rounds: writing region A failed" >&2
        tail -n 5 "$DIR/a.out" >&2
        failures=$((failures + 1))
        break
    fi

    # 2. Region B under load, and the fault.
    fio_nbd --rw=randwrite --bs=64k --offset="$half" --size="$half" --iodepth=16 \
        --time_based=1 --runtime=30 >"$DIR/b.out" 2>&1 &
    fio_pid=$!
    sleep "0.$((RANDOM % 9 + 1))"
    if [[ $fault == kill ]]; then
        kill -9 "$PID"
        wait "$PID" 2>/dev/null || true
        wait "$fio_pid" 2>/dev/null || true
        kills=$((kills + 1))
        start_umd
    elif [[ $METADATA == ddf ]]; then
        victim=${MEMBERS[$((RANDOM % N))]}
        ctl set "${P}dev-${victim##*/}/state" faulty >/dev/null 2>&1
        sleep 0.3
        kill "$fio_pid" 2>/dev/null || true
        wait "$fio_pid" 2>/dev/null || true
        # The manager rebuilds onto the spare (it activates it first: idle
        # alone may come before that); the failed disk leaves, and a fresh
        # blank disk joins the running container as the next spare.
        for ((i = 0; i < 6000; i++)); do
            [[ $(ctl get "${P}degraded") == 0 && $(ctl get "${P}sync_action") == idle ]] && break
            sleep 0.1
        done
        spare=""
        for d in "${DISKS[@]}"; do
            [[ $(ctl get "${P}dev-${d##*/}/state" 2>/dev/null) == in_sync ]] || continue
            [[ " ${MEMBERS[*]} " == *" $d "* ]] || spare=$d
        done
        if [[ -z $spare ]]; then
            echo "round $rounds: the spare was not rebuilt into ${victim##*/}'s slot" >&2
            failures=$((failures + 1))
            break
        fi
        for i in "${!MEMBERS[@]}"; do
            [[ ${MEMBERS[$i]} == "$victim" ]] && MEMBERS[i]=$spare
        done
        fresh=$DIR/s$rounds
        truncate -s "${MEMBER_MIB}M" "$fresh"
        if ! "$UMD" manage "$CTL" --add "$fresh" >>"$LOG" 2>&1; then
            echo "round $rounds: the container did not take a blank disk" >&2
            failures=$((failures + 1))
            break
        fi
        DISKS=("${MEMBERS[@]}" "$fresh")
        fails=$((fails + 1))
    else
        victim=$((RANDOM % N))
        "$UMD" manage "$CTL" --fail "m$victim" >/dev/null 2>&1
        sleep 0.3
        kill "$fio_pid" 2>/dev/null || true
        wait "$fio_pid" 2>/dev/null || true
        "$UMD" manage "$CTL" --remove "m$victim" >/dev/null 2>&1
        "$UMD" manage "$CTL" --add "$DIR/m$victim" >/dev/null 2>&1
        fails=$((fails + 1))
    fi

    # 3. Region A reads back through the server that lived through the fault.
    if fio_nbd --rw=randwrite --bs="$bs" --offset=0 --size="$half" --iodepth=16 \
        --verify=crc32c --verify_only=1 --randseed="$seed" >"$DIR/v.out" 2>&1; then
        verified=$((verified + half / $(numfmt --from=iec "${bs^^}")))
    else
        failures=$((failures + 1))
        echo "round $rounds ($fault, bs $bs): region A did not verify; replay with --seed $SEED" >&2
        grep -m3 -i "verify\|bad" "$DIR/v.out" >&2 || true
    fi

    # 4. After the resync or rebuild, parity and mirrors agree.
    wait_idle || { failures=$((failures + 1)); break; }
    if [[ $LEVEL != 0 ]]; then
        ctl set "${P}sync_action" check
        sleep 0.2
        wait_idle
        mm=$(ctl get "${P}mismatch_cnt")
        if [[ $mm != 0 ]]; then
            failures=$((failures + 1))
            echo "round $rounds ($fault): mismatch_cnt $mm after resync" >&2
        fi
    fi
    echo "round $rounds: $fault, bs $bs, region A verified, mismatch_cnt ${mm:-0}"
done

kill "$PID" 2>/dev/null || true
wait "$PID" 2>/dev/null || true
PID=""
echo "soak summary: seed $SEED, $rounds rounds, $kills kill -9, $fails member failures," \
    "$verified blocks verified, $failures failures"
[[ $failures == 0 ]]
