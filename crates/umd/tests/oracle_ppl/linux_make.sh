# Guest script (md-vm): mdadm makes a 3-member raid5 with a partial parity
# log on the first three disks and fills it from the fourth (the data disk),
# then stops it cleanly.
set -eu
set -- $MDVM_DISKS
mdadm --create /dev/md0 --run --assume-clean --level=5 --raid-devices=3 --chunk=64 \
    --metadata=1.2 --consistency-policy=ppl "$1" "$2" "$3" 2>&1
echo "policy $(cat /sys/block/md0/md/consistency_policy)"
size=$(blockdev --getsize64 /dev/md0)
dd if="$4" of=/dev/md0 bs=65536 count=$((size / 65536)) conv=fsync 2>/dev/null
echo "size $size"
mdadm --stop /dev/md0 2>&1
