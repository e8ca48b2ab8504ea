#!/usr/bin/env python3
"""A full-size random LoRA for timing LoRA switching (`lantern bench --only lora`): kohya
layout, every transformer Linear of the UNet (attention q/k/v/out, feed-forward, proj_in/out)
and every text-encoder attention and MLP projection, rank 32, alpha 16, fp16 — the shape of a
typical civitai SD 1.5 LoRA (about 150 MB). Reads only the shapes from the model folder that
tools/bench_weights.py wrote. Never committed.

    python3 tools/make_bench_lora.py .bench-cache/sd15 .bench-cache/bench-lora.safetensors
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

RANK, ALPHA = 32, 16.0
UNET_ENDS = ("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "ff.net.0.proj.weight",
             "ff.net.2.weight", "proj_in.weight", "proj_out.weight")
TE_ENDS = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "out_proj.weight", "fc1.weight", "fc2.weight")


def header(path: Path) -> dict:
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return h


def main():
    model, out = Path(sys.argv[1]), Path(sys.argv[2])
    rng = np.random.default_rng(0)
    tensors = {}
    parts = [
        ("lora_unet_", model / "unet/diffusion_pytorch_model.safetensors", UNET_ENDS, ""),
        ("lora_te_", model / "text_encoder/model.safetensors", TE_ENDS, "text_model."),
    ]
    for prefix, path, ends, strip in parts:
        for name, info in sorted(header(path).items()):
            if not name.endswith(ends) or ("attentions" not in name and prefix == "lora_unet_"):
                continue
            shape = info["shape"]
            module = name[: -len(".weight")]
            if not module.startswith(strip):
                module = strip + module
            key = prefix + module.replace(".", "_")
            out_dim, in_dim = shape[0], int(np.prod(shape[1:]))
            tail = [1] * (len(shape) - 2)
            down = rng.standard_normal((RANK, in_dim), dtype=np.float32) / np.sqrt(in_dim)
            up = rng.standard_normal((out_dim, RANK), dtype=np.float32) * 0.01
            tensors[key + ".lora_down.weight"] = down.reshape([RANK, in_dim] + tail).astype(np.float16)
            tensors[key + ".lora_up.weight"] = up.reshape([out_dim, RANK] + tail).astype(np.float16)
            tensors[key + ".alpha"] = np.array(ALPHA, dtype=np.float32)
    save_file(tensors, str(out))
    print(f"{out}: {len(tensors) // 3} layers, {out.stat().st_size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
