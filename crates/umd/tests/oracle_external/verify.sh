# Guest script: what Linux makes of two DDF containers that umd ran.
# Set a (disks 1-3) was stopped cleanly, set b (disks 4-6) was killed.
# Prints the on-disk VD states as mdadm reads them before assembly, then
# assembles both under mdmon, waits for any resync, runs the kernel's
# check, and prints each volume's state, mismatch_cnt and sha256.
set -eu
set -- $MDVM_DISKS
for d in "$1" "$4"; do
    mdadm --examine "$d" 2>&1 | grep -E 'Name\[|^ *state\[' | sed "s|^|examine $d |"
done
mdadm --assemble /dev/md/ddfa --run "$1" "$2" "$3" 2>&1
mdadm --assemble /dev/md/ddfb --run "$4" "$5" "$6" 2>&1
mdadm -I /dev/md/ddfa 2>&1 || true
mdadm -I /dev/md/ddfb 2>&1 || true
cat /proc/mdstat
pidof mdmon >/dev/null && echo "mdmon running"
for v in r1a r5a r1b r5b; do
    md=$(basename "$(readlink -f /dev/md/$v)")
    b=/sys/block/$md/md
    echo "assembled $v state=$(cat $b/array_state) resync_start=$(cat $b/resync_start)"
    # A dirty volume resyncs; wait until it is done.
    i=0
    while [ "$(cat $b/sync_action)" != idle ] || [ "$(cat $b/resync_start)" != none ]; do
        i=$((i + 1)); [ $i -lt 1200 ] || break
        usleep 50000
    done
    echo check > $b/sync_action
    i=0
    while [ "$(cat $b/sync_action)" != idle ]; do
        i=$((i + 1)); [ $i -lt 1200 ] || break
        usleep 50000
    done
    echo "volume $v mismatch_cnt=$(cat $b/mismatch_cnt) sha256=$(sha256sum /dev/$md | cut -d' ' -f1)"
done
mdadm --stop --scan 2>&1 || true
mdadm --stop --scan 2>&1 || true
echo "verified"
