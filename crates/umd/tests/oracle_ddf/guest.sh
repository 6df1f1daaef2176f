# Guest script (busybox sh) for oracle_ddf.rs: assemble every DDF container
# on the attached disks and every virtual disk in them with mdadm (which
# starts mdmon), let the kernel finish any resync, optionally write data, hash
# each array, then stop everything cleanly so mdmon records it clean.
#
# Settings (md-vm --env): WRITE=1 writes 4 MiB from the last disk into each
# array first, array number k (in name order) from byte k * 4096 of it.
#
# Output, one line per array, parsed by oracle_ddf.rs:
#   @@array NAME k=K md=MDX level=L size=BYTES degraded=N devs=vda,vdb sha=HEX
# (K: the array's number, in the order the arrays were written)
#   @@container MDX devs=vda,vdb   (a container md device and its disks)
#   @@resynced MDX        (the kernel ran a resync of MDX in this boot)
#   @@mdmon yes|no        (mdmon was running once arrays were assembled)
#   @@mdmon-exit yes|no   (mdmon exited after the containers stopped)
set -u
t() { echo "@@t $(cut -d' ' -f1 /proc/uptime) $*"; }
set -- $MDVM_DISKS
eval "src=\${$#}"

# Resync at full speed: md throttles it to speed_limit_min while the
# members see other I/O, and several arrays share members here.
echo 1000000 >/proc/sys/dev/raid/speed_limit_min
echo 1000000 >/proc/sys/dev/raid/speed_limit_max
mdadm --assemble --scan --run 2>&1
t assembled
cat /proc/mdstat
pidof mdmon >/dev/null && echo "@@mdmon yes" || echo "@@mdmon no"

# Member arrays, by VD name (mdadm names them NAME_0 without mdadm.conf).
arrays=
for l in /dev/md/*; do
    md=$(basename "$(readlink -f "$l")")
    [ -n "$(cat /sys/block/$md/md/level 2>/dev/null)" ] || continue
    name=${l##*/}
    name=${name%_0}
    arrays="$arrays $name:$md"
done
arrays=$(echo $arrays | tr ' ' '\n' | sort | tr '\n' ' ')

# Wait (bounded) until md has no sync running on $1; raid0 has no sync_action.
wait_idle() {
    [ -e /sys/block/$1/md/sync_action ] || return 0
    i=0
    while [ "$(cat /sys/block/$1/md/sync_action)" != idle ] && [ $i -lt 1200 ]; do
        usleep 100000
        i=$((i + 1))
    done
}

for a in $arrays; do
    wait_idle "${a#*:}"
done
t idle
k=0
for a in $arrays; do
    name=${a%%:*} md=${a#*:}
    if [ "${WRITE:-0}" = 1 ]; then
        dd if="$src" of="/dev/$md" bs=1M count=4 iflag=skip_bytes skip=$((k * 4096)) \
            conv=fsync 2>/dev/null
        wait_idle "$md"
    fi
    k=$((k + 1))
done
t written

k=0
for a in $arrays; do
    name=${a%%:*} md=${a#*:}
    b=/sys/block/$md
    devs=$(ls $b/slaves | sort | tr '\n' ',' | sed 's/,$//')
    sum=$(sha256sum /dev/$md | cut -d' ' -f1)
    echo "@@array $name k=$k md=$md level=$(cat $b/md/level) size=$(blockdev --getsize64 /dev/$md)" \
         "degraded=$(cat $b/md/degraded 2>/dev/null || echo 0) devs=$devs sha=$sum"
    k=$((k + 1))
done
for b in /sys/block/md*; do
    # A container's metadata_version is external:FORMAT; its arrays' is
    # external:/CONTAINER/N.
    case "$(cat $b/md/metadata_version 2>/dev/null)" in
        external:[!/-]*) ;;
        *) continue ;;
    esac
    echo "@@container ${b##*/} devs=$(ls $b/slaves | sort | tr '\n' ',' | sed 's/,$//')"
done
dmesg | sed -n 's/.*md: resync of RAID array \(md[0-9]*\).*/@@resynced \1/p' | sort -u
t hashed

for a in $arrays; do
    md=${a#*:}
    echo 0.05 > /sys/block/$md/md/safe_mode_delay
done
for a in $arrays; do
    md=${a#*:}
    mdadm --stop /dev/$md 2>&1
done
mdadm --stop --scan 2>&1
i=0
while pidof mdmon >/dev/null && [ $i -lt 50 ]; do usleep 100000; i=$((i + 1)); done
pidof mdmon >/dev/null && echo "@@mdmon-exit no" || echo "@@mdmon-exit yes"
t stopped
