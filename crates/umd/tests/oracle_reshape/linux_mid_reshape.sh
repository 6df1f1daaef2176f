# Guest script (busybox sh): let Linux md start reshapes and stop them half
# way, so the member superblocks record reshape_position; the host then reads
# the images. First every case's array is created and filled from the last
# disk's bytes and its sha256 printed; then all reshapes start together with
# their speed held low, and a few seconds later every array is frozen and
# stopped in the middle of its reshape.
#
# Input: $MDVM_FILES/plan.txt, one case per line:
#   IDX LEVEL CHUNK_KIB NDEV ACTION
# ACTION is `grow`: one more member (--add, then --raid-devices=NDEV+1;
# uses NDEV+1 disks). (mdadm 4.2 cannot shrink such small members without a
# backup file: "Cannot set new_offset", so there is no shrink case.)
# Output: lines starting with "@@" (parsed by oracle_reshape.rs).
set -u
t() { echo "@@t $(cut -d' ' -f1 /proc/uptime) $*"; }
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
while read -r idx level chunk ndev action; do
    [ -n "$idx" ] || continue
    take "$ndev"
    old=$members
    extra=
    if [ "$action" = grow ]; then take 1; extra=$members; fi
    md=/dev/md$idx
    if ! mdadm --create $md --run --assume-clean --level=$level --chunk=$chunk \
        --raid-devices=$ndev --metadata=1.2 $old </dev/null >/tmp/out 2>&1; then
        fail $idx create; continue
    fi
    size=$(blockdev --getsize64 $md)
    dd if="$src" of=$md bs=1M iflag=skip_bytes,count_bytes skip=$((idx * 4096)) \
        count="$size" conv=fsync 2>/dev/null
    echo "@@members $idx $old $extra"
    echo "@@size $idx $size"
    echo "@@sha256 $idx $(sha256sum $md | cut -d' ' -f1)"
    echo "$idx $ndev $action $extra" >>/tmp/cases
    t "filled md$idx"
done <"$MDVM_FILES/plan.txt"

echo 100 >/proc/sys/dev/raid/speed_limit_max
echo 1 >/proc/sys/dev/raid/speed_limit_min
while read -r idx ndev action extra; do
    md=/dev/md$idx
    echo 100 >/sys/block/md$idx/md/sync_speed_max
    mdadm --add $md $extra >/tmp/out 2>&1 || { fail $idx add; continue; }
    mdadm --grow $md --raid-devices=$((ndev + 1)) </dev/null >/tmp/out 2>&1 \
        || { fail $idx grow; continue; }
    t "reshaping md$idx"
done </tmp/cases
sleep 3
while read -r idx ndev action extra; do
    echo "@@progress $idx $(cat /sys/block/md$idx/md/reshape_position) $(cat /sys/block/md$idx/md/sync_action)"
    echo frozen >/sys/block/md$idx/md/sync_action
    mdadm --stop /dev/md$idx >/tmp/out 2>&1 || fail $idx stop
    t "stopped md$idx"
done </tmp/cases
exit $status
