# Guest script (md-vm): mdadm makes a 3-member PPL raid5 on the first three
# disks, the kernel fills it from the fourth, then writes the first 64 KiB
# chunk of many stripes at once and the power is cut (mdvm-crash) while
# those writes run: the superblocks stay dirty and the logs hold them.
set -eu
set -- $MDVM_DISKS
mdadm --create /dev/md0 --run --assume-clean --level=5 --raid-devices=3 --chunk=64 \
    --metadata=1.2 --consistency-policy=ppl "$1" "$2" "$3" 2>&1
echo 60 > /sys/block/md0/md/safe_mode_delay
size=$(blockdev --getsize64 /dev/md0)
dd if="$4" of=/dev/md0 bs=65536 count=$((size / 65536)) conv=fsync 2>/dev/null
echo "size $size"
i=0
while [ $i -lt 32 ]; do
    dd if=/dev/urandom of=/dev/md0 bs=4096 count=16 seek=$((i * 32 + 32)) oflag=direct 2>/dev/null &
    i=$((i + 1))
done
sleep 0.2
echo "array_state $(cat /sys/block/md0/md/array_state)"
mdvm-crash 0
