#!/usr/bin/env bash
# Checks that a release build really compiled its element-wise kernels for AVX2 and AVX-512:
# every instance of the wrappers `simd::with_avx2` / `simd::with_avx512` (what `vectorized!`
# expands to) must hold the kernel's loops in ymm / zmm registers. A wrapper that only jumps
# to a shared closure means that closure was not inlined and runs at SSE2 width at every
# level (it happened: GEGLU, GELU and the Winograd transforms did, until 2026-12-03).
#
#   tools/check_vectorized.sh [BINARY]   (default target/release/lantern; needs objdump)
set -euo pipefail
bin=${1:-target/release/lantern}
[ -x "$bin" ] || { echo "no binary at $bin (cargo build --release first)" >&2; exit 2; }
objdump -d --no-show-raw-insn -C "$bin" | awk '
  /^[0-9a-f]+ <.*>:$/ {
    name = ""
    if ($0 ~ /<lantern::model::cpu::simd::with_avx2>:$/) { name = "with_avx2 at " $1; reg = "ymm" }
    if ($0 ~ /<lantern::model::cpu::simd::with_avx512>:$/) { name = "with_avx512 at " $1; reg = "zmm" }
    if (name != "") { order[++n] = name; want[name] = reg; insns[name] = 0; wide[name] = 0 }
    next
  }
  name != "" && /^ +[0-9a-f]+:/ {
    insns[name]++
    if (index($0, want[name]) > 0) wide[name]++
  }
  END {
    bad = 0
    for (i = 1; i <= n; i++) {
      w = order[i]
      ok = wide[w] > 0
      printf "%-32s %5d instructions, %4d on %s%s\n", w, insns[w], wide[w], want[w], ok ? "" : "  <- NOT VECTORISED"
      if (!ok) bad++
    }
    if (n == 0) { print "no with_avx2/with_avx512 symbols found (stripped binary?)"; exit 2 }
    if (bad > 0) { printf "%d wrapper(s) not vectorised\n", bad; exit 1 }
    printf "all %d wrappers vectorised\n", n
  }'
