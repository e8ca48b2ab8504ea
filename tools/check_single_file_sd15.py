#!/usr/bin/env python3
"""Full-size check of single-file loading (not part of `cargo test`: gigabytes, minutes).

Writes the SD 1.5-architecture random-weight folder of tools/bench_weights.py as one
LDM-layout `.safetensors` (our converter, tools/make_single_file_fixtures.py), then at 64x64
with fixed latents, 6 steps, CFG 7.5:
  - diffusers: StableDiffusionPipeline.from_single_file(file, config=<the folder>) (diffusers
    needs a config and cannot download one here);
  - Lantern: `lantern generate --model FILE` with no config at all, and `--model FOLDER`;
and prints the pixel differences and both Lantern runs' peak memory (max RSS, /usr/bin/time).

    python tools/check_single_file_sd15.py --folder .bench-cache/sd15 --lantern target/release/lantern \
        [--out /tmp/sf-check]
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_single_file_fixtures as conv  # noqa: E402

from diffusers import StableDiffusionPipeline  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a lighthouse at dusk, oil painting"
NEGATIVE = "blurry, low quality"
LATENTS = ROOT / "tests" / "fixtures" / "latents" / "64x64.safetensors"


def write_single_file(folder: Path, path: Path):
    sd = {}
    sd.update(conv.unet_ldm(folder))
    sd.update(conv.vae_to_ldm(conv.read(folder, "vae")))
    sd.update(conv.clip_to_ldm(conv.read(folder, "text_encoder"), "cond_stage_model."))
    conv.save(path, sd, torch.float32)


def lantern(binary, model, out_png, extra=()):
    cmd = [
        "/usr/bin/time", "-v", str(binary), "generate", "--model", str(model), "--prompt", PROMPT,
        "--negative-prompt", NEGATIVE, "--steps", "6", "--guidance", "7.5", "--width", "64",
        "--height", "64", "--init-latents", str(LATENTS), "--output", str(out_png), "--no-history", "-q",
        *extra,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"lantern failed: {r.stderr}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)[1])
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", r.stderr)[1]
    return rss, wall


def diff(a, b):
    a = np.asarray(Image.open(a).convert("RGB")).astype(int)
    b = np.asarray(Image.open(b).convert("RGB")).astype(int)
    d = np.abs(a - b)
    return int(d.max()), float(d.mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", type=Path, default=ROOT / ".bench-cache" / "sd15")
    ap.add_argument("--lantern", type=Path, default=ROOT / "target" / "release" / "lantern")
    ap.add_argument("--out", type=Path, default=Path("/tmp/lantern-single-file-check"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    single = args.out / "sd15-random.safetensors"
    if not single.exists():
        write_single_file(args.folder, single)

    torch.set_num_threads(2)
    pipe = StableDiffusionPipeline.from_single_file(
        str(single), config=str(args.folder), torch_dtype=torch.float32, local_files_only=True,
        safety_checker=None,
    )
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        img = pipe(
            prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=6, guidance_scale=7.5,
            height=64, width=64, latents=load_file(LATENTS)["latents"], output_type="np",
        ).images[0]
    ref = args.out / "diffusers.png"
    Image.fromarray((img * 255).round().astype("uint8")).save(ref)
    del pipe

    ours = args.out / "lantern-single-file.png"
    rss_file, wall_file = lantern(args.lantern, single, ours)
    folder_png = args.out / "lantern-folder.png"
    rss_folder, wall_folder = lantern(args.lantern, args.folder, folder_png)
    m, mean = diff(ours, ref)
    print(f"single file vs diffusers from_single_file: max {m}/255, mean {mean:.3f}/255")
    m, mean = diff(ours, folder_png)
    print(f"single file vs the same weights as a folder: max {m}/255, mean {mean:.3f}/255")
    print(f"peak RSS: single file {rss_file / 1024:.0f} MiB ({wall_file}), folder {rss_folder / 1024:.0f} MiB ({wall_folder})")


if __name__ == "__main__":
    main()
