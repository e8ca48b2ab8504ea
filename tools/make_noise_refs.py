#!/usr/bin/env python3
"""Reference noise for Lantern's three noise sources -> tests/fixtures/noise/refs.json.

    /work/main/.bench-cache/venv/bin/python tools/make_noise_refs.py

`cpu`: real torch (tools/requirements-fixtures.txt), `torch.randn(shape,
generator=torch.Generator("cpu").manual_seed(seed))`, float32, for many seeds and shapes,
and sequences of draws from one generator (as diffusers' pipeline and its ancestral samplers
consume it). torch has two builds of its float32 normal kernel on x86-64 -- the AVX2 one (what
torch uses on any AVX2 CPU) and the scalar one (`ATEN_CPU_CAPABILITY=default`, and ARM
builds) -- so every case is drawn by both, each in its own subprocess, and the file records
both and where they differ.

`gpu`: NOT real CUDA output (there is no GPU here). The values come from `nv_randn` below, our
own NumPy reimplementation of AUTOMATIC1111's "NV" source (modules/rng_philox.py: Philox
4x32-10 keyed by the seed, counter (offset, 0, index, 0), curand's Box-Muller on the first two
words, in float64, rounded to float32; the offset advances by one per draw). Its first values
are checked against the twelve numbers rng_philox.py's docstring gives for seed 0 (the well-known
`torch.randn(3, 4, device="cuda")` after `manual_seed(0)`: -0.9247, -0.4253, -2.6438, ...).
They agree to within 3e-7, not exactly: the docstring's digits are float32 values a few ulp
from what the float64 NV formula gives (A1111's own code gives our numbers, not its docstring's),
consistent with CUDA computing Box-Muller in float32 with its fast sine. So `gpu` matches
A1111's NV source exactly and CUDA torch to ~1e-6.

Small draws are stored whole; larger ones as their first and last 8 values, the float64 sum
and the SHA-256 of the float32 little-endian bytes (which the Rust test recomputes), so the
file stays small while every value is compared.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "noise" / "refs.json"

SEEDS = [
    0,
    1,
    2,
    42,
    1234,
    31337,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,  # torch keeps the low 32 bits: the same numbers as seed 0
    2**32 + 42,
    2**53 + 1,
    2**63 + 5,
    2**64 - 1,
]

SHAPES = [
    [1],
    [2],
    [3],
    [15],
    [16],
    [17],
    [31],
    [32],
    [33],
    [100],
    [1, 4, 8, 8],
    [1, 4, 5, 9],
    [1, 4, 64, 64],
    [1, 4, 96, 64],
    [1, 4, 128, 128],
]

# Successive draws from one generator: mixes of the <16 path (with its cached second value)
# and the >=16 path, and the pipeline's own pattern (initial latents, then one draw per step).
SEQUENCES = [
    (7, [[3], [1, 4, 8, 8], [1], [17], [5], [16], [2]]),
    (42, [[1, 4, 8, 8]] * 7),
    (123, [[1, 4, 5, 9]] * 7),
    (2**32 + 7, [[1], [1], [1], [15], [33], [1]]),
    (99, [[1, 4, 64, 64]] * 3),
]

FULL_LIMIT = 64


def summarise(values):
    v = np.asarray(values, dtype=np.float32).reshape(-1)
    if v.size <= FULL_LIMIT:
        return {"n": int(v.size), "values": [float(x) for x in v]}
    return {
        "n": int(v.size),
        "first": [float(x) for x in v[:8]],
        "last": [float(x) for x in v[-8:]],
        "sum": float(v.astype(np.float64).sum()),
        "sha256": hashlib.sha256(v.astype("<f4").tobytes()).hexdigest(),
    }


def compact_json(obj, depth=0):
    """JSON with one line per case (lists of cases indented, everything below on one line)."""
    pad = " " * depth
    if isinstance(obj, dict) and depth < 4:
        items = [f'{pad} {json.dumps(k)}: {compact_json(v, depth + 1).lstrip()}' for k, v in obj.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        return pad + "[\n" + ",\n".join(pad + " " + json.dumps(v) for v in obj) + "\n" + pad + "]"
    return pad + json.dumps(obj)


# ---------------------------------------------------------------------------------------
# torch CPU, run in a subprocess per kernel build.

CHILD = r"""
import json, sys, torch
torch.set_num_threads(1)
spec = json.loads(sys.stdin.read())
out = {"capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
       "single": [], "sequences": []}
for seed in spec["seeds"]:
    for shape in spec["shapes"]:
        g = torch.Generator("cpu").manual_seed(seed)
        out["single"].append(torch.randn(shape, generator=g, dtype=torch.float32).reshape(-1).tolist())
for seed, shapes in spec["sequences"]:
    g = torch.Generator("cpu").manual_seed(seed)
    out["sequences"].append([torch.randn(s, generator=g, dtype=torch.float32).reshape(-1).tolist() for s in shapes])
print(json.dumps(out))
"""


def torch_draws(capability):
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    spec = {"seeds": SEEDS, "shapes": SHAPES, "sequences": SEQUENCES}
    res = subprocess.run(
        [sys.executable, "-c", CHILD], input=json.dumps(spec), env=env, capture_output=True, text=True, check=True
    )
    return json.loads(res.stdout)


# ---------------------------------------------------------------------------------------
# A1111's NV source, reimplemented here from its published algorithm.

PHILOX_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
PHILOX_W = (np.uint32(0x9E3779B9), np.uint32(0xBB67AE85))
TWO_POW32_INV = np.float32(2.3283064e-10)
TWO_POW32_INV_2PI = np.float32(2.3283064e-10 * 6.2831855)


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    for r in range(10):
        if r:
            k0 = (k0 + PHILOX_W[0]).astype(np.uint32)
            k1 = (k1 + PHILOX_W[1]).astype(np.uint32)
        p0 = c0.astype(np.uint64) * PHILOX_M[0]
        p1 = c2.astype(np.uint64) * PHILOX_M[1]
        c0, c1, c2, c3 = (
            (p1 >> np.uint64(32)).astype(np.uint32) ^ c1 ^ k0,
            (p1 & np.uint64(0xFFFFFFFF)).astype(np.uint32),
            (p0 >> np.uint64(32)).astype(np.uint32) ^ c3 ^ k1,
            (p0 & np.uint64(0xFFFFFFFF)).astype(np.uint32),
        )
    return c0, c1, c2, c3


def nv_randn(seed, offset, n):
    idx = np.arange(n, dtype=np.uint32)
    zero = np.zeros(n, dtype=np.uint32)
    k0 = np.full(n, seed & 0xFFFFFFFF, dtype=np.uint32)
    k1 = np.full(n, seed >> 32, dtype=np.uint32)
    x, y, _, _ = philox4x32_10(np.full(n, offset, dtype=np.uint32), zero, idx, zero, k0, k1)
    inv, inv2pi = np.float64(TWO_POW32_INV), np.float64(TWO_POW32_INV_2PI)
    u = x.astype(np.float64) * inv + inv / 2
    v = y.astype(np.float64) * inv2pi + inv2pi / 2
    return (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32)


# rng_philox.py's docstring: Generator(seed=0).randn((3, 4)), stated to be CUDA torch's output.
A1111_DOCSTRING_SEED0 = [
    -0.92466259, -0.42534415, -2.6438457, 0.14518388,
    -0.12086647, -0.57972564, -0.62285122, -0.32838709,
    -1.07454231, -0.36314407, -1.67105067, 2.26550497,
]  # fmt: skip


def main():
    import torch

    avx2 = torch_draws("avx2")
    scalar = torch_draws("default")
    assert avx2["capability"] == "AVX2", avx2["capability"]
    assert scalar["capability"] == "DEFAULT", scalar["capability"]

    cpu_single, differ_total, compared = [], 0, 0
    k = 0
    for seed in SEEDS:
        for shape in SHAPES:
            a, s = np.float32(avx2["single"][k]), np.float32(scalar["single"][k])
            k += 1
            diff = int((a != s).sum())
            differ_total += diff
            compared += a.size
            cpu_single.append(
                {
                    "seed": str(seed),
                    "shape": shape,
                    "avx2": summarise(a),
                    "scalar": summarise(s),
                    "kernels_differ_in": diff,
                    "kernels_max_abs_diff": float(np.abs(a.astype(np.float64) - s).max()),
                }
            )
    cpu_seq = []
    for (seed, shapes), a_draws, s_draws in zip(SEQUENCES, avx2["sequences"], scalar["sequences"]):
        cpu_seq.append(
            {
                "seed": str(seed),
                "shapes": shapes,
                "avx2": [summarise(d) for d in a_draws],
                "scalar": [summarise(d) for d in s_draws],
            }
        )

    nv0 = nv_randn(0, 0, 12)
    docstring_diff = float(np.abs(nv0.astype(np.float64) - A1111_DOCSTRING_SEED0).max())
    assert docstring_diff < 1e-6, nv0
    gpu_single = [
        {"seed": str(seed), "shape": shape, "values": summarise(nv_randn(seed, 0, int(np.prod(shape))))}
        for seed in SEEDS
        for shape in SHAPES
    ]
    gpu_seq = []
    for seed, shapes in SEQUENCES:
        gpu_seq.append(
            {
                "seed": str(seed),
                "shapes": shapes,
                "draws": [summarise(nv_randn(seed, i, int(np.prod(s)))) for i, s in enumerate(shapes)],
            }
        )

    refs = {
        "about": "made by tools/make_noise_refs.py; cpu = real torch, gpu = our NumPy reimplementation of A1111's NV source",
        "torch": avx2["torch"],
        "numpy": np.__version__,
        "cpu": {
            "kernels_differ_in": differ_total,
            "values_compared": compared,
            "single": cpu_single,
            "sequences": cpu_seq,
        },
        "gpu": {
            "a1111_docstring_seed0": A1111_DOCSTRING_SEED0,
            "a1111_docstring_max_abs_diff": docstring_diff,
            "single": gpu_single,
            "sequences": gpu_seq,
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(compact_json(refs) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(SEEDS)} seeds x {len(SHAPES)} shapes, {len(SEQUENCES)} sequences")
    print(f"torch AVX2 vs scalar kernel: {differ_total} of {compared} values differ")
    print(f"NV reimplementation vs A1111's published seed-0 values: max abs diff {docstring_diff:.3g}")


if __name__ == "__main__":
    sys.exit(main())
