#!/usr/bin/env bash
# Runs GradBench evals against adjoint, the hand-written C++ tool ("manual")
# and PyTorch, one after another on the same inputs, prints the harness's
# summary of each run, and ends with a Markdown table of median times.
#
#   gradbench/compare.sh /path/to/gradbench [--min-seconds S] [--table] [EVAL...]
#
# --table prints the table again from the logs of an earlier run, running nothing.
# EVAL defaults to every eval in gradbench/evals.txt but hello. TOOLS (default
# "adjoint manual pytorch") picks the tools. PyTorch and manual run on one
# thread (OMP_NUM_THREADS=1). A tool that takes longer than TIMEOUT seconds
# (default 60) on one evaluation is stopped there, and the rest of that eval's
# inputs go without it (PyTorch takes minutes on the larger ba, ht and lstm
# inputs). The logs stay in $OUT (default target/gradbench-compare). Needs
# python3 with numpy, scipy, pydantic, dataclasses-json and torch, and the
# checkout's cpp/json.hpp and built tools/manual (see README.md).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
[ $# -ge 1 ] || { sed -n '2,/^set/p' "$0" | sed '$d'; exit 2; }
checkout="$(cd "$1" && pwd)"; shift
min_seconds=1
table_only=no
evals=()
while [ $# -gt 0 ]; do
  case "$1" in
    --min-seconds) min_seconds="$2"; shift 2 ;;
    --table) table_only=yes; shift ;;
    *) evals+=("$1"); shift ;;
  esac
done
if [ ${#evals[@]} -eq 0 ]; then
  mapfile -t evals < <(grep -v '^hello$' "$here/evals.txt")
fi
tools=(${TOOLS:-adjoint manual pytorch})
out="${OUT:-$root/target/gradbench-compare}"
timeout="${TIMEOUT:-60}"
mkdir -p "$out"

if [ "$table_only" = no ]; then
[ -f "$checkout/cpp/json.hpp" ] || {
  echo "missing $checkout/cpp/json.hpp: copy nlohmann's json.hpp there (Debian: nlohmann-json3-dev)" >&2
  exit 1
}

# The tool, built for this machine as manual is (-march=native), in its own
# target directory so that the usual builds are not invalidated.
echo "building adjoint-gradbench (release, target-cpu=native)" >&2
RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR="$root/target/native" \
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p adjoint-gradbench
adjoint="$root/target/native/release/adjoint-gradbench"

# The harness's CLI: from PATH, or built from the checkout.
if command -v gradbench >/dev/null 2>&1; then
  cli=gradbench
else
  echo "building the gradbench CLI from $checkout" >&2
  CARGO_TARGET_DIR="$root/target/gradbench-cli" \
    cargo build --release --quiet --manifest-path "$checkout/crates/gradbench/Cargo.toml"
  cli="$root/target/gradbench-cli/release/gradbench"
fi

tool_command() {
  case "$1" in
    adjoint) echo "$adjoint" ;;
    manual) echo "python3 python/gradbench/gradbench/cpp.py manual" ;;
    pytorch) echo "python3 python/gradbench/gradbench/tools/pytorch/run.py" ;;
    *) echo "unknown tool $1" >&2; exit 2 ;;
  esac
}

eval_args() {
  case "$1" in
    # The largest hand-tracking instance is often missing from snapshots.
    ht) [ -s "$checkout/evals/ht/data/complicated_small/hand12_t26_c100000.txt" ] || echo "--max 11" ;;
  esac
}

cd "$checkout"
export PYTHONPATH="$checkout/python/gradbench${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
if printf '%s\n' "${evals[@]}" | grep -qx lstm && [ ! -s evals/lstm/data/lstm_full.txt ]; then
  echo "lstm reads evals/lstm/data/lstm_full.txt (any UTF-8 text of 8192 characters or more); it is missing" >&2
  exit 1
fi

for e in "${evals[@]}"; do
  for t in "${tools[@]}"; do
    log="$out/$e-$t.jsonl"
    echo "== $e, $t" >&2
    "$cli" run -o "$log" --timeout "$timeout" \
      --eval "python3 python/gradbench/gradbench/evals/$e/run.py --min-seconds $min_seconds $(eval_args "$e")" \
      --tool "$(tool_command "$t")" >&2 || true
    "$cli" log summary "$log" | sed 's/^/    /'
  done
done
fi

python3 - "$out" "${tools[*]}" "${evals[@]}" <<'PY'
import json, statistics, sys

out, tools, evals = sys.argv[1], sys.argv[2].split(), sys.argv[3:]

def runs(path):
    """(function, description) -> (median evaluate ns, valid, note) of one log.

    An evaluation without a timing says why: the tool lacks the eval ("—"), it
    did not answer in time or crashed ("timeout"), it answered a failure
    ("failed"), or the eval stopped before it ("not run", left out).
    """
    messages, results, answered = {}, {}, set()
    defined = True
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return results, False
    for line in lines:
        entry = json.loads(line)
        if "message" in entry:
            m = entry["message"]
            messages[m["id"]] = m
            if m.get("kind") == "evaluate":
                key = (m["function"], m.get("description", ""))
                results[key] = [None, None, "timeout", m["id"]]
        elif "response" in entry:
            r = entry["response"]
            answered.add(r["id"])
            m = messages.get(r["id"], {})
            if m.get("kind") == "define" and not r.get("success"):
                defined = False
            if m.get("kind") == "evaluate":
                key = (m["function"], m.get("description", ""))
                if r.get("success"):
                    times = [t["nanoseconds"] for t in r.get("timings", []) if t["name"] == "evaluate"]
                    results[key] = [statistics.median(times), None, None, m["id"]]
                else:
                    results[key] = [None, None, "failed", m["id"]]
            elif m.get("kind") == "analysis":
                for v in results.values():
                    if v[3] == m["of"]:
                        v[1] = m["valid"]
    return {k: tuple(v[:3]) for k, v in results.items()}, defined

def cell(result, defined):
    if not defined:
        return "—"
    if result is None:
        return "not run"
    ns, valid, note = result
    if ns is None:
        return note
    mark = "" if valid is not False else " (invalid)"
    return f"{ns / 1e6:.3f}{mark}"

def ratio(a, b):
    if a is None or b is None or a[0] is None or b[0] is None:
        return ""
    r = a[0] / b[0]
    return f"{r:.2f}" if r >= 0.01 else f"{r:.1e}"

print()
head = ["eval", "function", "input"] + [f"{t} (ms)" for t in tools]
ratios = [(tools[0], t) for t in tools[1:]]
head += [f"{a}/{b}" for a, b in ratios]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for e in evals:
    logs = {t: runs(f"{out}/{e}-{t}.jsonl") for t in tools}
    keys = list(dict.fromkeys(k for t in tools for k in logs[t][0]))
    for key in keys:
        got = {t: logs[t][0].get(key) for t in tools}
        row = [e, key[0], key[1]] + [cell(got[t], logs[t][1]) for t in tools]
        row += [ratio(got[a], got[b]) for a, b in ratios]
        print("| " + " | ".join(row) + " |")
PY
