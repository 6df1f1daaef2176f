#!/usr/bin/env bash
# Run every fuzz target for a few seconds each (default 20): the smoke run
# that is part of the test suite. Longer runs: `cargo fuzz run TARGET` here.
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable
# toolchain provide them.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-20}
export RUSTC_BOOTSTRAP=1
[[ -x ./seed-corpus.sh ]] && ./seed-corpus.sh >/dev/null
targets=$(cargo fuzz list)
failed=0
for t in $targets; do
    mkdir -p "corpus/$t"
    if cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
        > "/tmp/umd-fuzz-$t.log" 2>&1; then
        echo "fuzz $t: ok ($(grep -o 'Done [0-9]* runs' "/tmp/umd-fuzz-$t.log" | tail -1))"
    else
        echo "fuzz $t: FAILED (log: /tmp/umd-fuzz-$t.log)"
        tail -30 "/tmp/umd-fuzz-$t.log"
        failed=1
    fi
done
exit $failed
