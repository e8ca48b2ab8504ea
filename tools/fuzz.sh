#!/usr/bin/env bash
# Long fuzzing run of the parser surface (tests/fuzz.rs): the same targets `cargo test` runs
# briefly, with many more inputs each. Failing inputs are written under $LANTERN_FUZZ_OUT.
#
#   tools/fuzz.sh [ITERATIONS_PER_TARGET] [SEED] [TARGET_FILTER]
#
# e.g. `tools/fuzz.sh 2000000 7 parameters`. Prints one line per target: inputs, time, the
# slowest input and the panics found (the run fails if there are any).
set -euo pipefail
cd "$(dirname "$0")/.."
export LANTERN_FUZZ_ITERS="${1:-200000}"
export LANTERN_FUZZ_SEED="${2:-$(date +%s)}"
export LANTERN_FUZZ_OUT="${LANTERN_FUZZ_OUT:-target/fuzz-out}"
mkdir -p "$LANTERN_FUZZ_OUT"
echo "fuzzing: $LANTERN_FUZZ_ITERS inputs per target, seed $LANTERN_FUZZ_SEED, failures in $LANTERN_FUZZ_OUT"
# One target at a time, so each line comes out when its target ends.
cargo test --test fuzz -- --nocapture --test-threads 1 ${3:-fuzz_}
