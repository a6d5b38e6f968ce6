#!/usr/bin/env bash
# The compile-time cost of #[differentiable]: a scratch crate of 20 functions of 30
# scalar operations each (a fixed mix of + - * / sin cos exp tanh sqrt), built with the
# attribute on every function and, as a second crate, without it (same bodies).
# Dependencies are built first; then REPS (default 3) rounds each rebuild both crates
# alone (touch, then `cargo build`), interleaved so that both see the same machine
# load. Prints the medians of wall time and of CPU time (user + sys of cargo and
# rustc; less sensitive to other builds on the machine) and their ratios.
#
# Usage: [REPS=n] scripts/expansion_cost.sh [--release]
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
profile_flag=()
[[ "${1:-}" == "--release" ]] && profile_flag=(--release)
target="${CARGO_TARGET_DIR:-$root/target}"
reps="${REPS:-3}"
scratch="$target/expansion_cost"

# A scratch crate named $1 in $scratch/$1.
setup() {
    local crate="$scratch/$1"
    mkdir -p "$crate/src"
    # The repository's lock file, so that the dependencies already built are reused.
    cp "$root/Cargo.lock" "$crate/Cargo.lock"
    cat >"$crate/Cargo.toml" <<TOML
[package]
name = "expansion-cost-$1"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
adjoint = { path = "$root" }

[workspace]
TOML
}

# Writes 20 functions of 30 operations into crate $1; $2 is the attribute line ("" for
# none).
generate() {
    awk -v attr="$2" 'BEGIN {
        print "#![allow(dead_code, unused_imports, unused_variables, clippy::all)]"
        print "use adjoint::prelude::*;"
        seed = 12345
        ops = 9
        for (f = 0; f < 20; f++) {
            print ""
            if (attr != "") print attr
            printf "pub fn f%d(x: f64, y: f64, z: f64) -> f64 {\n", f
            print "    let v0 = x;"
            print "    let v1 = y;"
            print "    let v2 = z;"
            n = 3
            for (i = 0; i < 30; i++) {
                # A linear congruential generator: the same crate every run.
                seed = (seed * 1103515245 + 12345) % 2147483648
                a = int(seed / 65536) % n
                seed = (seed * 1103515245 + 12345) % 2147483648
                b = int(seed / 65536) % n
                op = (f + i) % ops
                if (op == 0) e = sprintf("v%d + v%d", a, b)
                else if (op == 1) e = sprintf("v%d * v%d", a, b)
                else if (op == 2) e = sprintf("v%d.sin() - v%d", a, b)
                else if (op == 3) e = sprintf("v%d / (1.5 + v%d * v%d)", a, b, b)
                else if (op == 4) e = sprintf("(0.1 * v%d).exp()", a)
                else if (op == 5) e = sprintf("v%d - v%d", a, b)
                else if (op == 6) e = sprintf("v%d.cos() * 2.0", a)
                else if (op == 7) e = sprintf("v%d.tanh() + v%d", a, b)
                else e = sprintf("(1.0 + v%d * v%d).sqrt()", a, a)
                printf "    let v%d = %s;\n", n, e
                n++
            }
            printf "    v%d + v%d\n}\n", n - 1, n - 2
        }
    }' >"$scratch/$1/src/lib.rs"
}

# Rebuilds crate $1 alone; prints "wall cpu" in seconds.
build() {
    local crate="$scratch/$1"
    touch "$crate/src/lib.rs"
    local TIMEFORMAT="%R %U %S" t
    t=$({ time (cd "$crate" && cargo build -q "${profile_flag[@]}" --target-dir "$target" 2>>"$scratch/build.log"); } 2>&1) ||
        { cat "$scratch/build.log" >&2; exit 1; }
    echo "$t" | awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }'
}

# The median of the numbers on stdin.
median() {
    sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

setup plain
setup macro
generate plain ""
generate macro "#[differentiable]"
for c in plain macro; do
    (cd "$scratch/$c" && cargo build -q "${profile_flag[@]}" --target-dir "$target") # warm
done
: >"$scratch/plain.times"
: >"$scratch/macro.times"
for _ in $(seq "$reps"); do
    build plain >>"$scratch/plain.times"
    build macro >>"$scratch/macro.times"
done
plain_wall=$(cut -d' ' -f1 "$scratch/plain.times" | median)
plain_cpu=$(cut -d' ' -f2 "$scratch/plain.times" | median)
macro_wall=$(cut -d' ' -f1 "$scratch/macro.times" | median)
macro_cpu=$(cut -d' ' -f2 "$scratch/macro.times" | median)
echo "median of $reps rebuilds of the crate      wall      cpu"
printf 'without #[differentiable]              %7.3f s %7.3f s\n' "$plain_wall" "$plain_cpu"
printf 'with    #[differentiable]              %7.3f s %7.3f s\n' "$macro_wall" "$macro_cpu"
printf 'ratio                                  %7.2f   %7.2f\n' \
    "$(echo "$macro_wall / $plain_wall" | bc -l)" "$(echo "$macro_cpu / $plain_cpu" | bc -l)"
