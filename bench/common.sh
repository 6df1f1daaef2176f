# Shared by the bench/ scripts (sourced, not run): the help text from the
# script's header comment, the --quick/--help arguments, errors, tool checks,
# and the umd binary to measure. Set BENCH_NAME before sourcing.

# The script's header comment (line 2 up to `set -euo`), without the '#'.
bench_usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

die() { echo "$BENCH_NAME: $*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found in PATH ($2)"; }

# Sets `quick` (0 or 1) from the arguments; prints help or refuses others.
bench_args() {
    quick=0
    for arg in "$@"; do
        case "$arg" in
            --quick) quick=1 ;;
            -h | --help) bench_usage; exit 0 ;;
            *) echo "$BENCH_NAME: unknown argument: $arg (try --help)" >&2; exit 2 ;;
        esac
    done
}

# Sets UMD: $UMD_BIN, else `cargo build --release -p umd` in repository $1.
bench_umd() {
    if [[ -n ${UMD_BIN:-} ]]; then
        UMD=$UMD_BIN
    else
        echo "building umd (cargo build --release -p umd) ..." >&2
        (cd "$1" && cargo build --release -p umd >&2) || die "cargo build failed"
        local target_dir=${CARGO_TARGET_DIR:-target}
        [[ $target_dir == /* ]] || target_dir=$1/$target_dir
        UMD=$target_dir/release/umd
    fi
    [[ -x $UMD ]] || die "umd binary not found or not executable: $UMD"
}
