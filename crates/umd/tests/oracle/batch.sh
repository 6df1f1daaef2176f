# Guest script (busybox sh): create one batch of md arrays with mdadm, fill
# each with host-made pseudo-random bytes, hash it, stop it, and print
# `mdadm --examine` of every member, so the host can compare umd against the
# kernel and mdadm on the very same member images.
#
# Input: $MDVM_FILES/plan.txt, one array per line:
#   IDX LEVEL LAYOUT CHUNK_KIB META BITMAP NDEV
# ("-" for no layout / no chunk; BITMAP is "internal" or "none"). Members are
# taken from $MDVM_DISKS in order, NDEV per array; the last disk is the data
# source: array IDX receives its bytes starting at offset IDX * 4096, so every
# array holds different data.
#
# Output: marker lines starting with "@@" (parsed by oracle.rs), with the raw
# `mdadm --examine` text between "@@examine IDX MEMBER DEV" and "@@end".
set -u
t() { echo "@@t $(cut -d' ' -f1 /proc/uptime) $*"; }

set -- $MDVM_DISKS
eval "src=\${$#}"
plan=$MDVM_FILES/plan.txt
status=0
next=1
created=
: >/tmp/members.txt

while read -r idx level layout chunk meta bitmap ndev; do
    [ -n "$idx" ] || continue
    members=
    i=0
    while [ "$i" -lt "$ndev" ]; do
        eval "members=\"\$members \${$next}\""
        next=$((next + 1))
        i=$((i + 1))
    done
    opts="--level=$level --raid-devices=$ndev --metadata=$meta"
    [ "$layout" != - ] && opts="$opts --layout=$layout"
    [ "$chunk" != - ] && opts="$opts --chunk=$chunk"
    [ "$bitmap" != none ] && opts="$opts --bitmap=$bitmap"
    echo "@@members $idx$members"
    echo "$idx$members" >>/tmp/members.txt
    # --assume-clean is right because every member is a fresh zero-filled
    # sparse file: parity and mirrors of zeros are zeros.
    if ! mdadm --create "/dev/md$idx" --run --assume-clean $opts $members \
        </dev/null >/tmp/create.out 2>&1; then
        echo "@@create-failed $idx $(tr '\n' ' ' </tmp/create.out)"
        status=1
        continue
    fi
    created="$created $idx"
    size=$(blockdev --getsize64 "/dev/md$idx")
    # one dd, no pipe: pipes are several times slower than the disks under TCG
    dd if="$src" of="/dev/md$idx" bs=1M iflag=skip_bytes,count_bytes \
        skip=$((idx * 4096)) count="$size" conv=fsync 2>/dev/null
    echo "@@size $idx $size"
    t "wrote md$idx"
done <"$plan"
t written

sync
echo 3 >/proc/sys/vm/drop_caches
for idx in $created; do
    echo "@@sha256 $idx $(sha256sum "/dev/md$idx" | cut -d' ' -f1)"
    echo "@@sysfs $idx layout=$(cat /sys/block/md$idx/md/layout 2>/dev/null)" \
        "chunk_size=$(cat /sys/block/md$idx/md/chunk_size 2>/dev/null)"
done
t hashed

for idx in $created; do
    mdadm --stop "/dev/md$idx" >/dev/null 2>&1 || { echo "@@stop-failed $idx"; status=1; }
done

while read -r idx members; do
    k=0
    for d in $members; do
        echo "@@examine $idx $k $d"
        mdadm --examine "$d" 2>&1
        echo "@@end"
        k=$((k + 1))
    done
done </tmp/members.txt
t examined
exit $status
