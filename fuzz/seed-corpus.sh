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
echo "seeded: $(ls "$here/corpus/sb0" | wc -l) sb0, $(ls "$here/corpus/sb1" | wc -l) sb1, $(ls "$here/corpus/ddf" | wc -l) ddf"
