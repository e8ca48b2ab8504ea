#!/usr/bin/env bash
# Lantern against other CPU engines on the same full-size random SD 1.5 weights, same thread
# count, interleaved (Lantern, diffusers, ..., Lantern, diffusers, ...), each measurement in a
# fresh process. Prints a table; the last line is
#   ratios: unet512=R vae512=R clip=R rss=R
# (Lantern's best time, or peak memory of a full 20-step 512² generation, over diffusers'),
# preceded by one `ratios_<engine>: unet512=R vae512=R clip=R gen512=R rss=R` line per other
# engine.
#
# Environment:
#   THREADS     threads for every engine (default: all cores)
#   ROUNDS      rounds of clip/unet256/unet512/vae512 (default 2); GEN_ROUNDS: of gen512 (1)
#   STEPS       steps of gen512 (default 20)
#   ENGINES     any of: lantern diffusers openvino sdcpp (default "lantern diffusers")
#                 openvino  tools/bench_openvino.py: OpenVINO CPU plugin, IR converted from the
#                           diffusers modules (cached under BENCH_CACHE/openvino), f32
#                 sdcpp     tools/bench_sdcpp.py: stable-diffusion.cpp from the cyllama wheel,
#                           on BENCH_CACHE/sd15.safetensors written from the folder
#   MEASURES    a subset of: clip unet256 unet512 vae512 gen512 (default: all)
#   ISA         native (default) or avx2. With avx2, where the CPU and kernel offer CPUID faulting
#               (`cpuid_fault` in /proc/cpuinfo), every engine process runs with
#               tools/hide_avx512.c preloaded: `cpuid` answers without AVX-512 and AMX, so each
#               engine picks its AVX2 kernels by itself, as on a laptop (glibc too, through
#               GLIBC_TUNABLES). Lantern then runs without LANTERN_CPU, on its own detection.
#               HIDE_AVX512=0 skips that and uses only the environment caps below; so does a
#               machine without CPUID faulting (with a warning):
#                 lantern   LANTERN_CPU=avx2
#                 diffusers ONEDNN_MAX_CPU_ISA=AVX2 (torch's oneDNN: convolutions, jit:avx2 in
#                           ONEDNN_VERBOSE), ATEN_CPU_CAPABILITY=avx2 (torch's own kernels),
#                           MKL_ENABLE_INSTRUCTIONS=AVX2 (MKL sgemm; on AMD CPUs MKL runs its
#                           AVX2 "zen" sgemm kernel anyway, even with ISA=native)
#                 openvino  ONEDNN_MAX_CPU_ISA=AVX2 + OV_CPU_MAX_ISA=AVX2; only partly: the
#                           MLAS FullyConnected kernels stay AVX-512 (see bench_openvino.py)
#                           unless AVX-512 is hidden
#                 sdcpp     nothing to do: the cyllama wheel's ggml is built AVX2-only
#   LANTERN_BIN a lantern binary to time as it is (default: `cargo build --release`, then
#               target/release/lantern)
#   BENCH_CACHE (default .bench-cache), BENCH_PYTHON (a python with torch and diffusers, plus
#   openvino / cyllama for those engines; default: a venv made under BENCH_CACHE on first use).
#
#   ISA=avx2 ENGINES="lantern diffusers openvino sdcpp" THREADS=2 tools/bench_compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${BENCH_CACHE:-.bench-cache}
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-2}
GEN_ROUNDS=${GEN_ROUNDS:-1}
STEPS=${STEPS:-20}
ENGINES=${ENGINES:-lantern diffusers}
MEASURES=${MEASURES:-clip unet256 unet512 vae512 gen512}
ISA=${ISA:-native}
mkdir -p "$CACHE"
export BENCH_CACHE=$CACHE

for e in $ENGINES; do
  case $e in lantern | diffusers | openvino | sdcpp) ;; *) echo "ENGINES: unknown engine $e" >&2; exit 2 ;; esac
done
for m in $MEASURES; do
  case $m in clip | unet256 | unet512 | vae512 | gen512) ;; *) echo "MEASURES: unknown measure $m" >&2; exit 2 ;; esac
done
case $ISA in
  native) ;;
  avx2)
    export LANTERN_CPU=avx2 ONEDNN_MAX_CPU_ISA=AVX2 OV_CPU_MAX_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2
    ;;
  *) echo "ISA: native or avx2, not $ISA" >&2; exit 2 ;;
esac
has() { [[ " $ENGINES " == *" $1 "* ]]; }

PY=${BENCH_PYTHON:-}
if [ -z "$PY" ]; then
  PY="$CACHE/venv/bin/python"
  if [ ! -x "$PY" ]; then
    echo "== installing torch and diffusers into $CACHE/venv (once)" >&2
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install -q torch diffusers transformers safetensors
  fi
fi
if has openvino && ! "$PY" -c "import openvino" 2>/dev/null; then
  echo "== installing openvino for $PY" >&2
  "$PY" -m pip install -q openvino
fi
if has sdcpp && ! "$PY" -c "import cyllama.sd" 2>/dev/null; then
  echo "== installing cyllama (stable-diffusion.cpp) for $PY" >&2
  "$PY" -m pip install -q cyllama
fi

echo "== weights" >&2
"$PY" tools/bench_weights.py --out "$CACHE" >&2
MODEL="$CACHE/sd15"

LANTERN=${LANTERN_BIN:-${CARGO_TARGET_DIR:-target}/release/lantern}
if has lantern && [ -z "${LANTERN_BIN:-}" ]; then
  echo "== building lantern (release)" >&2
  cargo build --release -q
fi
# One-time conversions (OpenVINO IR, single-file checkpoint), outside the timed rounds.
if has openvino; then
  echo "== openvino: IR" >&2
  "$PY" tools/bench_openvino.py --model "$MODEL" --prepare >&2
fi
if has sdcpp; then
  echo "== sdcpp: single-file checkpoint" >&2
  "$PY" tools/bench_sdcpp.py --model "$MODEL" --prepare >&2
fi

# ISA=avx2: hide AVX-512 from every engine process from here on (not from the builds above).
HIDDEN=no
if [ "$ISA" = avx2 ] && [ "${HIDE_AVX512:-1}" != 0 ]; then
  if grep -qw cpuid_fault /proc/cpuinfo && gcc -O2 -shared -fPIC -o "$CACHE/hide_avx512.so" tools/hide_avx512.c -ldl; then
    export LD_PRELOAD="$(cd "$CACHE" && pwd)/hide_avx512.so${LD_PRELOAD:+:$LD_PRELOAD}" HIDE_AVX512_STRICT=1
    export GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-AVX512ER,-AVX512PF
    unset LANTERN_CPU
    HIDDEN=yes
  else
    echo "== ISA=avx2: no CPUID faulting here, so AVX-512 stays visible: environment caps only (OpenVINO's MLAS GEMMs stay AVX-512)" >&2
  fi
fi

RESULTS="$CACHE/results-$(date +%Y%m%d-%H%M%S).jsonl"
: > "$RESULTS"
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS

run_one() {  # engine name repeats
  local engine=$1 name=$2 repeats=$3
  case $engine in
    lantern)
      "$LANTERN" bench --model "$MODEL" --only "$name" --repeats "$repeats" --steps "$STEPS" | grep "\"name\":\"$name\"" >> "$RESULTS"
      ;;
    diffusers)
      "$PY" tools/bench_diffusers.py --model "$MODEL" --threads "$THREADS" --only "$name" --repeats "$repeats" --steps "$STEPS" \
        2>/dev/null | grep "\"name\": \"$name\"" >> "$RESULTS"
      ;;
    openvino | sdcpp)
      # A failure here is reported and skipped, so a long run still ends with its table.
      local log="$CACHE/last-$engine.log"
      if ! "$PY" "tools/bench_$engine.py" --model "$MODEL" --threads "$THREADS" --only "$name" --repeats "$repeats" --steps "$STEPS" \
        2>"$log" | grep "\"name\": \"$name\"" >> "$RESULTS"; then
        echo "== $engine $name FAILED (stderr in $log)" >&2
        tail -5 "$log" >&2
      fi
      ;;
  esac
}

run_round() {  # name rounds repeats
  local name=$1 rounds=$2 repeats=$3
  [[ " $MEASURES " == *" $name "* ]] || return 0
  for ((r = 1; r <= rounds; r++)); do
    for engine in $ENGINES; do
      echo "== $name round $r/$rounds: $engine" >&2
      run_one "$engine" "$name" "$repeats"
    done
  done
}

run_round clip "$ROUNDS" 5
run_round unet256 "$ROUNDS" 3
run_round unet512 "$ROUNDS" 2
run_round vae512 "$ROUNDS" 2
run_round gen512 "$GEN_ROUNDS" 1

SGEMM=$("$PY" - "$THREADS" <<'PYEOF'
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a = torch.randn(4096, 4096); b = torch.randn(4096, 4096)
a @ b
best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(5))
print(f"{2 * 4096**3 / best / 1e9:.0f}")
PYEOF
)
LANTERN_DEVICES=$(has lantern && "$LANTERN" --version 2>/dev/null | sed -n 's/^devices: //p' || true)
TORCH_ISA=$("$PY" -c "import torch; print(torch.backends.cpu.get_cpu_capability())" 2>/dev/null || echo "?")
[ "$HIDDEN" = yes ] && ISA_SHOWN="avx2 (AVX-512 hidden by CPUID faulting)" || ISA_SHOWN=$ISA

"$PY" - "$RESULTS" "$THREADS" "$SGEMM" "$ISA_SHOWN" "$ENGINES" "$LANTERN_DEVICES" "$TORCH_ISA" <<'PYEOF'
import json, sys
path, threads, sgemm, isa, engines, lantern_devices, torch_isa = sys.argv[1:8]
sgemm = float(sgemm)
engines = engines.split()
others = [e for e in engines if e != "lantern"]
rows = [json.loads(l) for l in open(path) if l.strip()]
best = {}
for r in rows:
    key = (r["impl"], r["name"])
    cur = best.get(key)
    if cur is None or r["seconds"] < cur["seconds"]:
        best[key] = r
gflop = {"unet256": 401.5, "unet512": 1606.0, "vae512": 2500.0}
names = ["clip", "unet256", "unet512", "vae512", "gen512"]
print(f"threads={threads}  isa={isa}  torch sgemm 4096^3: {sgemm:.0f} GFLOP/s")
# What each engine really ran on (its own report), beside the ISA asked for.
notes = []
if "lantern" in engines and lantern_devices:
    notes.append(f"lantern: {lantern_devices}")
if "diffusers" in engines:
    notes.append(f"diffusers: torch CPU capability {torch_isa}")
ov = next((best[("openvino", n)] for n in ("unet512", "unet256", "vae512", "clip") if ("openvino", n) in best), None)
if "openvino" in engines and ov and "kernels" in ov:
    notes.append(f"openvino kernels ({ov['name']}): {ov['kernels']}, precision {ov.get('ov_precision', '?')}, threads {ov.get('ov_threads', '?')}")
sd = next((r for r in rows if r["impl"] == "sdcpp" and "system_info" in r), None)
if "sdcpp" in engines and sd:
    flags = dict(f.strip().split(" = ") for f in sd["system_info"].replace("System Info:", "").split("|") if "=" in f)
    notes.append(f"sdcpp: AVX2={flags.get('AVX2', '?')} AVX512={flags.get('AVX512', '?')} (fixed at build)")
# The generations do not all take the same UNet calls (diffusers and Lantern: the folder's
# PNDM, 20 steps = 21 batch-2 calls).
runs = []
for e in ("openvino", "sdcpp"):
    g = best.get((e, "gen512"))
    if e in engines and g:
        how = g.get("scheduler") or g.get("sampler") or "?"
        runs.append(f"{e} {how} {g.get('unet_calls', '?')} calls" + (" (batch 1: cond, uncond)" if e == "sdcpp" else ""))
if runs:
    notes.append("gen512: lantern/diffusers PNDM (steps + 1 batch-2 calls); " + "; ".join(runs))
for n in notes:
    print(f"  {n}")
legacy = others == ["diffusers"]  # the two-engine table keeps its old columns
heads = [f"{e} s" for e in engines] + (["ratio"] if legacy else [f"lan/{e}" for e in others])
widths = [max(10, len(h)) for h in heads]
print(f"{'measure':10} " + " ".join(f"{h:>{w}}" for h, w in zip(heads, widths)) + f" {'lantern GFLOP/s':>16} {'% sgemm':>8}")
ratios = {e: {} for e in others}
for name in names:
    got = {e: best.get((e, name)) for e in engines}
    if sum(v is not None for v in got.values()) < 2 and not (len(engines) == 1 and got[engines[0]]):
        continue
    a = got.get("lantern")
    cells = [f"{got[e]['seconds']:.3f}" if got[e] else "-" for e in engines]
    for e in others:
        if a and got[e]:
            ratios[e][name] = a["seconds"] / got[e]["seconds"]
            cells.append(f"{ratios[e][name]:.2f}")
        else:
            cells.append("-")
    g = gflop.get(name)
    rate = f"{g / a['seconds']:.0f}" if g and a else "-"
    share = f"{100 * g / a['seconds'] / sgemm:.0f}%" if g and a else "-"
    print(f"{name:10} " + " ".join(f"{c:>{w}}" for c, w in zip(cells, widths)) + f" {rate:>16} {share:>8}")
gen = {e: best.get((e, "gen512")) for e in engines}
rss = {}
for e in others:
    a, b = gen.get("lantern"), gen[e]
    rss[e] = a["peak_rss_bytes"] / b["peak_rss_bytes"] if a and b and b["peak_rss_bytes"] else float("nan")
if sum(v is not None for v in gen.values()) >= 2 or (len(engines) == 1 and gen[engines[0]]):
    print("peak RSS, full generation: " + ", ".join(f"{e} {gen[e]['peak_rss_bytes']/2**30:.2f} GiB" for e in engines if gen[e]))
fmt = lambda e, k: f"{ratios[e][k]:.2f}" if k in ratios[e] else "nan"
for e in others:
    if e != "diffusers":
        print(f"ratios_{e}: unet512={fmt(e, 'unet512')} vae512={fmt(e, 'vae512')} clip={fmt(e, 'clip')} gen512={fmt(e, 'gen512')} rss={rss[e]:.2f}")
if "diffusers" in others:
    print(f"ratios: unet512={fmt('diffusers', 'unet512')} vae512={fmt('diffusers', 'vae512')} clip={fmt('diffusers', 'clip')} rss={rss['diffusers']:.2f}")
PYEOF
