#!/usr/bin/env python3
"""Seeded end-to-end references: diffusers' pipelines on the tiny fixtures drawing their own
noise from `generator=torch.Generator("cpu").manual_seed(seed)` (no `latents=`), for every
sampler `lantern generate --scheduler` offers, Euler a included (whose per-step noise comes
from the same generator). `lantern generate --rng cpu --seed S` must give the same pictures
(tests/seeded_parity.rs).

    /work/main/.bench-cache/venv/bin/python tools/make_seeded_refs.py

Writes tests/fixtures/reference/seeded/<family>/<case>.png and cases.json; reads the fixture
models written by tools/make_fixtures.py and changes nothing else. A batch case passes one
generator per image (seeds S, S+1: A1111's convention, which diffusers follows when given a
list of generators).
"""

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as fx  # noqa: E402
from diffusers import (  # noqa: E402
    EulerAncestralDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)

SCHEDULERS = dict(fx.SCHEDULERS)
SCHEDULERS["euler-a"] = (EulerAncestralDiscreteScheduler, {})

STEPS = 6
PROMPT = "a small boat on a calm lake"
NEGATIVE = "blurry"

# Seeds across the range: small, 2^31 - 1, past 2^32 (torch keeps the low 32 bits), past 2^63.
SEEDS = [0, 42, 1234, 2**31 - 1, 2**32 + 5, 2**63 + 5, 7, 99, 31337, 123456789]

# (name, scheduler, seed, height, width, guidance, negative, batch)
def cases():
    out = []
    for i, sched in enumerate(SCHEDULERS):
        seed = SEEDS[i % len(SEEDS)]
        g = 7.5 if i % 2 == 0 else 1.0
        out.append((f"{sched}-sq", sched, seed, 64, 64, g, NEGATIVE if g > 1 else None, 1))
    # Euler a again: a latent size that is not a multiple of 16 (torch's tail recompute in
    # every draw), and a batch of two (seed, seed + 1).
    out.append(("euler-a-wide", "euler-a", 2**32 + 77, 40, 72, 5.0, None, 1))
    out.append(("euler-a-batch", "euler-a", 500, 64, 64, 7.5, NEGATIVE, 2))
    out.append(("dpmpp-2m-batch", "dpmpp-2m", 2**31 - 2, 40, 72, 1.0, None, 2))
    return out


def set_scheduler(pipe, name):
    spec = SCHEDULERS[name]
    if spec is None:
        pipe.scheduler = pipe._lantern_default.__class__.from_config(pipe._lantern_default.config)
    else:
        cls, extra = spec
        pipe.scheduler = cls.from_config(pipe._lantern_default.config, **extra)


def make(family, folder, pipeline_cls, **load_kwargs):
    pipe = pipeline_cls.from_pretrained(folder, torch_dtype=torch.float32, **load_kwargs)
    pipe.set_progress_bar_config(disable=True)
    pipe._lantern_default = pipe.scheduler
    out_dir = fx.FIX / "reference" / "seeded" / family
    fx.clean_folder(out_dir)
    records = []
    for name, sched, seed, h, w, g, neg, batch in cases():
        set_scheduler(pipe, sched)
        generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(batch)]
        with torch.no_grad():
            images = pipe(
                prompt=PROMPT,
                negative_prompt=neg,
                num_inference_steps=STEPS,
                guidance_scale=g,
                height=h,
                width=w,
                num_images_per_prompt=batch,
                generator=generators if batch > 1 else generators[0],
                output_type="np",
            ).images
        files = []
        for i, img in enumerate(images):
            file = f"{name}.png" if batch == 1 else f"{name}-{i}.png"
            Image.fromarray((img * 255).round().astype("uint8")).save(out_dir / file, optimize=False)
            files.append(file)
        records.append(
            dict(
                name=name,
                files=files,
                scheduler=sched,
                seed=str(seed),
                height=h,
                width=w,
                guidance=g,
                prompt=PROMPT,
                negative_prompt=neg,
                steps=STEPS,
                batch=batch,
                pixel_std=round(float(np.std(images[0] * 255)), 2),
            )
        )
        print(f"{family:5} {name:22} seed={seed} std={records[-1]['pixel_std']}", flush=True)
    fx.write_json(
        out_dir / "cases.json", {"family": family, "model": str(folder.relative_to(fx.FIX)), "cases": records}
    )


def main():
    make("sd1", fx.FIX / "sd1-tiny", StableDiffusionPipeline, safety_checker=None)
    make("sd2", fx.FIX / "sd2-tiny", StableDiffusionPipeline, safety_checker=None)
    make("sdxl", fx.FIX / "sdxl-tiny", StableDiffusionXLPipeline, variant="fp16")


if __name__ == "__main__":
    sys.exit(main())
