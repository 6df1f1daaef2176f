# Guest script (busybox sh): assemble arrays that were written outside this
# VM, let the kernel judge them, and print what it found.
#
# Input: $MDVM_FILES/plan.txt, one array per line:
#   IDX CHECK NASM NREADD
# Members are taken from $MDVM_DISKS in order: the first NASM go to
# `mdadm --assemble --run /dev/mdIDX`, the next NREADD are re-added with
# `mdadm --re-add` once it runs. CHECK is 1 where the level has a `check`.
#
# Per array, before assembly: `mdadm --examine` of every member; right after
# assembly: sync_action, resync_start, array_state, degraded and
# /proc/mdstat (a clean array must not start a resync); then it waits for
# any resync or recovery, runs `check`, and prints mismatch_cnt, the size
# and the sha256 of /dev/mdIDX, stops the array, and prints `mdadm --examine`
# of its first member again (what the kernel records after running it).
#
# Output: marker lines starting with "@@" (parsed by oracle_write/verify.rs);
# raw text sits between "@@examine IDX K DEV" / "@@mdstat IDX" /
# "@@examine-after IDX" and "@@end".
set -u
set -- $MDVM_DISKS
next=1
# bound every wait: 0.2 s steps, 150 s
wait_max=750

# sysfs() prints "?" for an attribute the level lacks (linear and raid0 have
# no sync_action, degraded or mismatch_cnt).
sysfs() { cat "/sys/block/md$1/md/$2" 2>/dev/null || echo "?"; }

wait_idle() {
    [ -e "/sys/block/md$1/md/sync_action" ] || return 0
    n=0
    while [ "$(sysfs "$1" sync_action)" != idle ] && [ $n -lt $wait_max ]; do
        usleep 200000
        n=$((n + 1))
    done
}

while read -r idx check nasm nreadd; do
    [ -n "$idx" ] || continue
    asm= readd= k=0
    while [ $k -lt $((nasm + nreadd)) ]; do
        eval "d=\${$next}"
        next=$((next + 1))
        echo "@@examine $idx $k $d"
        mdadm --examine "$d" 2>&1
        echo "@@end"
        if [ $k -lt "$nasm" ]; then asm="$asm $d"; else readd="$readd $d"; fi
        k=$((k + 1))
    done
    if ! mdadm --assemble --run "/dev/md$idx" $asm </dev/null >/tmp/asm.out 2>&1; then
        echo "@@assemble-failed $idx $(tr '\n' ' ' </tmp/asm.out)"
        continue
    fi
    echo "@@after $idx sync_action=$(sysfs "$idx" sync_action)" \
        "resync_start=$(sysfs "$idx" resync_start)" \
        "array_state=$(sysfs "$idx" array_state)" \
        "degraded=$(sysfs "$idx" degraded)"
    echo "@@mdstat $idx"
    cat /proc/mdstat
    echo "@@end"
    for d in $readd; do
        mdadm "/dev/md$idx" --re-add "$d" >/tmp/readd.out 2>&1 ||
            echo "@@readd-failed $idx $(tr '\n' ' ' </tmp/readd.out)"
    done
    if [ -n "$readd" ]; then
        n=0
        while [ "$(sysfs "$idx" degraded)" != 0 ] && [ $n -lt $wait_max ]; do
            usleep 200000
            n=$((n + 1))
        done
        echo "@@readd $idx degraded=$(sysfs "$idx" degraded)"
    fi
    wait_idle "$idx"
    if [ "$check" = 1 ]; then
        echo check >"/sys/block/md$idx/md/sync_action"
        wait_idle "$idx"
        echo "@@check $idx mismatch_cnt=$(sysfs "$idx" mismatch_cnt)" \
            "sync_action=$(sysfs "$idx" sync_action)"
    fi
    echo "@@size $idx $(blockdev --getsize64 "/dev/md$idx")"
    echo "@@sha256 $idx $(sha256sum "/dev/md$idx" | cut -d' ' -f1)"
    mdadm --stop "/dev/md$idx" >/dev/null 2>&1 || echo "@@stop-failed $idx"
    # what the kernel itself records after running these members
    set -- $asm
    echo "@@examine-after $idx"
    mdadm --examine "$1" 2>&1
    echo "@@end"
    set -- $MDVM_DISKS
done <"$MDVM_FILES/plan.txt"
exit 0
