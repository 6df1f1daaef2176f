# Guest script (md-vm): assemble each array of the PPL test and report what
# the kernel makes of it. Disks: a0-a2 (mdadm-made, written by umd), b0-b2
# (umd-made), c0-c2 (umd killed mid-write), d0-d1 (a copy of c without its
# last member). Lines: "NAME key value".
set -u
set -- $MDVM_DISKS
odd_chunks() { # sha256 of every second 64 KiB chunk of $1 (never written in flight)
    n=$(($(blockdev --getsize64 "$1") / 65536)); i=1
    while [ $i -lt $n ]; do dd if="$1" bs=65536 skip=$i count=1 2>/dev/null; i=$((i + 2)); done | sha256sum | cut -d' ' -f1
}
report() { # NAME MD
    md=/sys/block/${2#/dev/}/md
    echo "$1 policy $(cat $md/consistency_policy)"
    echo "$1 degraded $(cat $md/degraded)"
    echo "$1 resync_start $(cat $md/resync_start)"
    echo "$1 sync_action $(cat $md/sync_action)"
}
check() { # NAME MD
    mdadm --wait "$2" >/dev/null 2>&1
    echo check > /sys/block/${2#/dev/}/md/sync_action
    mdadm --wait "$2" >/dev/null 2>&1
    echo "$1 mismatch_cnt $(cat /sys/block/${2#/dev/}/md/mismatch_cnt)"
}
mdadm --assemble /dev/md0 --run "$1" "$2" "$3" 2>&1 | sed 's/^/a mdadm /'
report a /dev/md0
echo "a sha256 $(sha256sum < /dev/md0 | cut -d' ' -f1)"
check a /dev/md0
mdadm --stop /dev/md0 >/dev/null 2>&1
mdadm --assemble /dev/md1 --run "$4" "$5" "$6" 2>&1 | sed 's/^/b mdadm /'
report b /dev/md1
echo "b sha256 $(sha256sum < /dev/md1 | cut -d' ' -f1)"
check b /dev/md1
mdadm --stop /dev/md1 >/dev/null 2>&1
mdadm --assemble /dev/md2 --run "$7" "$8" "$9" 2>&1 | sed 's/^/c mdadm /'
report c /dev/md2
echo "c odd $(odd_chunks /dev/md2)"
check c /dev/md2
mdadm --stop /dev/md2 >/dev/null 2>&1
shift 9
# Dirty and degraded: PPL arrays start without --force.
mdadm --assemble /dev/md3 --run "$1" "$2" 2>&1 | sed 's/^/d mdadm /'
report d /dev/md3
echo "d odd $(odd_chunks /dev/md3)"
mdadm --stop /dev/md3 >/dev/null 2>&1
dmesg | grep -i 'ppl\|dirty degraded' | sed 's/^/kernel /'
echo done
