# Guest script: mdadm makes two DDF containers, each with a raid1 and a raid5
# volume, on disks 1-3 (set a) and 4-6 (set b); both are stopped cleanly.
set -eu
set -- $MDVM_DISKS
mk() {
    tag=$1; shift
    mdadm --create /dev/md/ddf$tag --run --metadata=ddf --raid-devices=3 "$@" 2>&1
    mdadm --create /dev/md/r1$tag --run --assume-clean --level=1 --raid-devices=2 \
          --size=8192 /dev/md/ddf$tag 2>&1
    mdadm --create /dev/md/r5$tag --run --assume-clean --level=5 --raid-devices=3 \
          --chunk=64 --size=8192 /dev/md/ddf$tag 2>&1
}
mk a "$1" "$2" "$3"
mk b "$4" "$5" "$6"
cat /proc/mdstat
for v in r1a r5a r1b r5b; do
    md=$(basename "$(readlink -f /dev/md/$v)")
    echo "volume $v md=$md size=$(blockdev --getsize64 /dev/$md) state=$(cat /sys/block/$md/md/array_state)"
done
mdadm --examine "$1" 2>&1 | grep -E 'Name\[|state\[|Raid Devices\[' || true
for v in r1a r5a r1b r5b; do mdadm --stop /dev/md/$v 2>&1; done
mdadm --stop /dev/md/ddfa /dev/md/ddfb 2>&1
echo "created"
