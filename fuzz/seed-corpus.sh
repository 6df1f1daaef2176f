#!/bin/sh
# Seed fuzz/corpus/<target>/ with the md superblocks of the real member images.
# Usage: fuzz/seed-corpus.sh [real-image-dir]  (default: $UMD_TESTDATA or ../shared/testdata/real)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
real=${1:-${UMD_TESTDATA:-$here/../../shared/testdata/real}}
[ -d "$real" ] || { echo "no real images at $real" >&2; exit 1; }
mkdir -p "$here/corpus/sb0" "$here/corpus/sb1" "$here/corpus/bitmap" "$here/corpus/ddf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in "$real"/util-linux/mdraid*.img.xz "$real"/dissect.volume/md/*.bin.gz; do
    name=$(basename "$f")
    case "$f" in
        *.xz) xz -dc "$f" > "$tmp/img" ;;
        *.gz) gzip -dc "$f" > "$tmp/img" ;;
    esac
    sectors=$(( $(stat -c %s "$tmp/img") / 512 ))
    # 1.2 superblock at sector 8 (formats.md §2.1); keep it only if the magic is there.
    dd if="$tmp/img" of="$tmp/sb1" bs=512 skip=8 count=8 status=none
    if [ "$(od -An -tx4 -N4 "$tmp/sb1" | tr -d ' ')" = "a92b4efc" ]; then
        cp "$tmp/sb1" "$here/corpus/sb1/$name"
    fi
    # 0.90 superblock at (N & ~127) - 128 (formats.md §1.1).
    at=$(( (sectors / 128) * 128 - 128 ))
    dd if="$tmp/img" of="$tmp/sb0" bs=512 skip="$at" count=8 status=none
    if [ "$(od -An -tx4 -N4 "$tmp/sb0" | tr -d ' ')" = "a92b4efc" ]; then
        cp "$tmp/sb0" "$here/corpus/sb0/$name"
    fi
done
for f in "$real"/util-linux/ddf-raid.img.xz "$real"/dissect.volume/ddf/*.bin.gz; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    case "$f" in
        *.xz) xz -dc "$f" > "$tmp/img" ;;
        *.gz) gzip -dc "$f" > "$tmp/img" ;;
    esac
    # DDF lives at the device tail; keep the last 1 MiB as the seed.
    tail -c 1048576 "$tmp/img" > "$here/corpus/ddf/$name"
done
# NBD: what a client sends — flags, OPT_GO for the default export, then
# READ, WRITE (+FUA) with its payload, FLUSH, TRIM, WRITE_ZEROES, DISC; and
# a LIST + ABORT negotiation; a LIST, then GO by name for a second export.
# Control: request lines of every verb. Manager socket: updates, both pings.
mkdir -p "$here/corpus/nbd" "$here/corpus/control" "$here/corpus/mon_socket"
python3 - "$here/corpus" <<'PY'
import struct, sys
d = sys.argv[1]
def req(flags, kind, handle, offset, length):
    return struct.pack(">IHHQQI", 0x25609513, flags, kind, handle, offset, length)
go = b"IHAVEOPT" + struct.pack(">II", 7, 6) + struct.pack(">IH", 0, 0)
session = struct.pack(">I", 3) + go
session += req(0, 0, 1, 0, 1024)
session += req(1, 1, 2, 4096, 512) + b"u" * 512
session += req(0, 3, 3, 0, 0) + req(0, 4, 4, 8192, 4096) + req(0, 6, 5, 16384, 8192)
session += req(0, 2, 6, 0, 0)
open(d + "/nbd/session", "wb").write(session)
lst = struct.pack(">I", 3) + b"IHAVEOPT" + struct.pack(">II", 3, 0)
lst += b"IHAVEOPT" + struct.pack(">II", 2, 0)
open(d + "/nbd/list-abort", "wb").write(lst)
name = b"ro"
by_name = struct.pack(">I", 3) + b"IHAVEOPT" + struct.pack(">II", 3, 0)
by_name += b"IHAVEOPT" + struct.pack(">II", 7, 4 + len(name) + 2) + struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
by_name += req(0, 0, 1, 0, 512) + req(0, 1, 2, 0, 512) + b"w" * 512
open(d + "/nbd/go-by-name", "wb").write(by_name)
def frame(length, payload=b""):
    return b"umd{" + struct.pack("<i", length) + payload + b"}dmu"
mon = frame(5, b"hello") + frame(-1) + frame(0) + frame(3, b"\xffno")
open(d + "/mon_socket/session", "wb").write(mon)
open(d + "/control/get-set-list", "wb").write(b"get array_state\nset stripe_cache_size 512\nlist\n")
open(d + "/control/watch", "wb").write(b"watch array_state sync_action dev-m0.img/state\n")
open(d + "/control/states", "wb").write(b"set dev-m1.img/state faulty\nset array_state readonly\n")
PY
echo "seeded: $(ls "$here/corpus/sb0" | wc -l) sb0, $(ls "$here/corpus/sb1" | wc -l) sb1, $(ls "$here/corpus/ddf" | wc -l) ddf"
