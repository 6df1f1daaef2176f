#!/usr/bin/env bash
# The full test suite: unit, property, real-image and kernel-oracle tests,
# then a short run of every fuzz target.
#
#   ./test.sh            everything
#   ./test.sh --no-fuzz  skip the fuzz smoke runs
#
# Needs the images and the kernel oracle beside the repository (../shared);
# the tests that use them fail loudly when they are missing, unless
# UMD_SKIP_REAL_IMAGES=1 / UMD_SKIP_ORACLE=1 say to skip them.
set -euo pipefail
cd "$(dirname "$0")"
fuzz=1
[[ ${1:-} == --no-fuzz ]] && fuzz=0

# "sim" = release speed with debug assertions and overflow checks on.
cargo test --workspace --profile sim

if [[ $fuzz == 1 ]]; then
    fuzz/run-short.sh "${UMD_FUZZ_SECONDS:-20}"
fi
