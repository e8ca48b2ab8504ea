#!/usr/bin/env bash
# Lantern against diffusers on the same full-size random SD 1.5 weights, same thread count,
# interleaved (Lantern, diffusers, Lantern, diffusers, ...), each measurement in a fresh
# process. Prints a table; the last line is
#   ratios: unet512=R vae512=R clip=R rss=R
# (Lantern's best time, or peak memory of a full 20-step 512² generation, over diffusers').
#
# Environment: THREADS (default: all cores), ROUNDS (default 2), GEN_ROUNDS (default 1),
# STEPS (default 20), BENCH_CACHE (default .bench-cache), BENCH_PYTHON (a python with torch
# and diffusers; default: a venv made under BENCH_CACHE on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${BENCH_CACHE:-.bench-cache}
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-2}
GEN_ROUNDS=${GEN_ROUNDS:-1}
STEPS=${STEPS:-20}
mkdir -p "$CACHE"

PY=${BENCH_PYTHON:-}
if [ -z "$PY" ]; then
  PY="$CACHE/venv/bin/python"
  if [ ! -x "$PY" ]; then
    echo "== installing torch and diffusers into $CACHE/venv (once)" >&2
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install -q torch diffusers transformers safetensors
  fi
fi

echo "== weights" >&2
"$PY" tools/bench_weights.py --out "$CACHE" >&2
MODEL="$CACHE/sd15"

echo "== building lantern (release)" >&2
cargo build --release -q
LANTERN=${CARGO_TARGET_DIR:-target}/release/lantern

RESULTS="$CACHE/results-$(date +%Y%m%d-%H%M%S).jsonl"
: > "$RESULTS"
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS

run_pair() {  # name rounds repeats
  local name=$1 rounds=$2 repeats=$3
  for ((r = 1; r <= rounds; r++)); do
    echo "== $name round $r/$rounds: lantern" >&2
    "$LANTERN" bench --model "$MODEL" --only "$name" --repeats "$repeats" --steps "$STEPS" | grep "\"name\":\"$name\"" >> "$RESULTS"
    echo "== $name round $r/$rounds: diffusers" >&2
    "$PY" tools/bench_diffusers.py --model "$MODEL" --threads "$THREADS" --only "$name" --repeats "$repeats" --steps "$STEPS" \
      2>/dev/null | grep "\"name\": \"$name\"" >> "$RESULTS"
  done
}

run_pair clip "$ROUNDS" 5
run_pair unet256 "$ROUNDS" 3
run_pair unet512 "$ROUNDS" 2
run_pair vae512 "$ROUNDS" 2
run_pair gen512 "$GEN_ROUNDS" 1

SGEMM=$("$PY" - "$THREADS" <<'PYEOF'
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a = torch.randn(4096, 4096); b = torch.randn(4096, 4096)
a @ b
best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(5))
print(f"{2 * 4096**3 / best / 1e9:.0f}")
PYEOF
)

"$PY" - "$RESULTS" "$THREADS" "$SGEMM" <<'PYEOF'
import json, sys
path, threads, sgemm = sys.argv[1], sys.argv[2], float(sys.argv[3])
rows = [json.loads(l) for l in open(path) if l.strip()]
best = {}
for r in rows:
    key = (r["impl"], r["name"])
    cur = best.get(key)
    if cur is None or r["seconds"] < cur["seconds"]:
        best[key] = r
gflop = {"unet256": 401.5, "unet512": 1606.0, "vae512": 2500.0}
print(f"threads={threads}  torch sgemm 4096^3: {sgemm:.0f} GFLOP/s")
print(f"{'measure':10} {'lantern s':>10} {'diffusers s':>12} {'ratio':>7} {'lantern GFLOP/s':>16} {'% sgemm':>8}")
ratios = {}
for name in ["clip", "unet256", "unet512", "vae512", "gen512"]:
    a, b = best.get(("lantern", name)), best.get(("diffusers", name))
    if not a or not b:
        continue
    ratio = a["seconds"] / b["seconds"]
    ratios[name] = ratio
    g = gflop.get(name)
    rate = f"{g / a['seconds']:.0f}" if g else "-"
    share = f"{100 * g / a['seconds'] / sgemm:.0f}%" if g else "-"
    print(f"{name:10} {a['seconds']:10.3f} {b['seconds']:12.3f} {ratio:7.2f} {rate:>16} {share:>8}")
a, b = best.get(("lantern", "gen512")), best.get(("diffusers", "gen512"))
rss = a["peak_rss_bytes"] / b["peak_rss_bytes"] if a and b and b["peak_rss_bytes"] else float("nan")
if a and b:
    print(f"peak RSS, full generation: lantern {a['peak_rss_bytes']/2**30:.2f} GiB, diffusers {b['peak_rss_bytes']/2**30:.2f} GiB")
fmt = lambda k: f"{ratios[k]:.2f}" if k in ratios else "nan"
print(f"ratios: unet512={fmt('unet512')} vae512={fmt('vae512')} clip={fmt('clip')} rss={rss:.2f}")
PYEOF
