#!/usr/bin/env bash
# Runs the second-order benchmark once, then prints each row's median (criterion's
# target/criterion/<group>/<row>/new/estimates.json) and its ratios to the group's
# `primal` and `hand` rows, and for groups with an `adjoint` row, the goal of issue 13
# and the fastest peer. Rows not measured by this run are left out.
#
# Usage: benches/second-order/run.sh [cargo bench arguments]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
stamp="$(mktemp)"
trap 'rm -f "$stamp"' EXIT
CARGO_INCREMENTAL=0 cargo bench --bench second_order "$@"

python3 - "$here/target/criterion" "$stamp" <<'PY'
import json, os, sys

root, stamp = sys.argv[1], os.path.getmtime(sys.argv[2])
groups = ["jvp_seed", "jvp_rosenbrock1000", "hvp_seed", "hvp_rosenbrock1000"]
goal = {"jvp": 1.5, "hvp": 5.0}
peers = ("num-dual", "echidna")


def fmt(ns):
    for unit, scale in (("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


print("| group | row | median | × primal | × hand |")
print("|---|---|---:|---:|---:|")
notes = []
for group in groups:
    medians = {}
    base = os.path.join(root, group)
    for row in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        path = os.path.join(base, row, "new", "estimates.json")
        if os.path.isfile(path) and os.path.getmtime(path) >= stamp:
            with open(path) as f:
                medians[row] = json.load(f)["median"]["point_estimate"]
    if "primal" not in medians:
        continue
    name = group.replace("_", "/", 1)
    for row, t in sorted(medians.items(), key=lambda kv: kv[1]):
        hand = f"{t / medians['hand']:.2f}" if "hand" in medians else "–"
        print(f"| {name} | {row} | {fmt(t)} | {t / medians['primal']:.2f} | {hand} |")
    if "adjoint" in medians:
        ratio = medians["adjoint"] / medians["primal"]
        limit = goal[group.split("_")[0]]
        rivals = {r: t for r, t in medians.items() if r.startswith(peers)}
        best = min(rivals, key=rivals.get)
        ahead = medians["adjoint"] < rivals[best]
        notes.append(
            f"{name}: adjoint {ratio:.2f}× primal (goal ≤ {limit}×: "
            f"{'met' if ratio <= limit else 'missed'}); fastest peer {best} "
            f"{rivals[best] / medians['primal']:.2f}× ({'behind' if ahead else 'ahead of'} adjoint)"
        )
if notes:
    print()
    print("\n".join(notes))
PY
