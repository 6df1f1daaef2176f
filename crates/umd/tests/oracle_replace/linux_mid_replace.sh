# Guest script (busybox sh): let Linux md start hot replaces and stop them
# half way, so the replacement's superblock records MD_FEATURE_REPLACEMENT
# and its checkpoint; the host then runs the images in umd. Every case's
# array is created and filled from the last disk's bytes and its sha256
# printed; then every replace starts with the speed held low, and a few
# seconds later every array is frozen and stopped mid-copy.
#
# Input: $MDVM_FILES/plan.txt, one case per line:
#   IDX LEVEL NDEV
# Each case takes NDEV disks for the array and one more for the spare that
# replaces its member 1 (`mdadm --replace ... --with`).
# Output: lines starting with "@@" (parsed by oracle_replace.rs).
set -u
disk() { n=$1; set -- $MDVM_DISKS; eval "echo \${$n}"; }
set -- $MDVM_DISKS
src=$(disk $#)
next=1
status=0
take() {
    members=
    i=0
    while [ "$i" -lt "$1" ]; do
        members="$members $(disk $next)"
        next=$((next + 1))
        i=$((i + 1))
    done
}
fail() { echo "@@failed $1 $2: $(tr '\n' ' ' </tmp/out)"; status=1; }
: >/tmp/cases
while read -r idx level ndev; do
    [ -n "$idx" ] || continue
    take "$ndev"
    old=$members
    take 1
    spare=$members
    md=/dev/md$idx
    chunk=--chunk=64
    [ "$level" = 1 ] && chunk=
    if ! mdadm --create $md --run --assume-clean --level=$level $chunk \
        --raid-devices=$ndev --metadata=1.2 $old </dev/null >/tmp/out 2>&1; then
        fail $idx create; continue
    fi
    size=$(blockdev --getsize64 $md)
    dd if="$src" of=$md bs=1M iflag=skip_bytes,count_bytes skip=$((idx * 4096)) \
        count="$size" conv=fsync 2>/dev/null
    echo "@@size $idx $size"
    echo "@@sha256 $idx $(sha256sum $md | cut -d' ' -f1)"
    set -- $old
    echo "$idx $2 $spare" >>/tmp/cases
done <"$MDVM_FILES/plan.txt"

echo 100 >/proc/sys/dev/raid/speed_limit_max
echo 1 >/proc/sys/dev/raid/speed_limit_min
while read -r idx replaced spare; do
    md=/dev/md$idx
    echo 100 >/sys/block/md$idx/md/sync_speed_max
    mdadm $md --add $spare >/tmp/out 2>&1 || { fail $idx add; continue; }
    mdadm $md --replace $replaced --with $spare >/tmp/out 2>&1 \
        || { fail $idx replace; continue; }
done </tmp/cases
sleep 3
while read -r idx replaced spare; do
    echo "@@progress $idx $(cat /sys/block/md$idx/md/sync_completed) $(cat /sys/block/md$idx/md/sync_action)"
    echo frozen >/sys/block/md$idx/md/sync_action
    mdadm --stop /dev/md$idx >/tmp/out 2>&1 || fail $idx stop
done </tmp/cases
exit $status
