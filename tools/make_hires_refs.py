#!/usr/bin/env python3
"""Hires-fix references, composed from diffusers' own pipelines the way A1111's hires fix
works: a text-to-image pass at the base size (`output_type="latent"`, generator seeded S), the
latents scaled with `torch.nn.functional.interpolate` (bilinear = A1111's "Latent", nearest =
"Latent (nearest)") or the decoded picture scaled with PIL's Lanczos, then an img2img pass with a
fresh `generator=manual_seed(S)` (A1111 draws the second pass's noise from the same seed) whose
schedule is the smallest `n` with ⌊n·strength⌋ = hires steps (so exactly that many steps run).
`lantern generate --rng cpu --hires-scale … --hires-steps … --strength …` must give the same
pictures (tests/img2img.rs).

    /tmp/fxv/bin/python tools/make_hires_refs.py

Writes tests/fixtures/reference/hires/<name>.png and cases.json.
"""

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as fx  # noqa: E402
import make_img2img_refs as refs  # noqa: E402
from diffusers import (  # noqa: E402
    StableDiffusionImg2ImgPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLPipeline,
)

OUT = fx.FIX / "reference" / "hires"
PROMPT = "a small boat on a calm lake"
NEGATIVE = "blurry"

# (name, family, scheduler, seed, base (w, h), scale, steps, hires steps, strength, upscaler, guidance)
CASES = [
    ("sd1-euler-a-latent", "sd1", "euler-a", 7, (64, 48), 1.5, 6, 4, 0.6, "latent", 7.5),
    ("sd1-dpmpp-2m-nearest", "sd1", "dpmpp-2m", 8, (48, 64), 2.0, 5, 0, 0.5, "latent-nearest", 7.5),
    ("sd1-euler-lanczos", "sd1", "euler", 9, (64, 64), 1.25, 5, 3, 0.45, "lanczos", 1.0),
    ("sdxl-default-latent", "sdxl", "default", 10, (64, 64), 1.5, 5, 4, 0.55, "latent", 7.5),
]


def schedule_steps(run, strength):
    n = max(int(run / strength), run)
    while int(n * strength) < run:
        n += 1
    return n


def main():
    fx.clean_folder(OUT)
    pipes = {}
    records = []
    for name, family, sched, seed, (w, h), scale, steps, hires_steps, strength, upscaler, g in CASES:
        if family not in pipes:
            folder, kwargs = refs.MODELS[family]
            t2i_cls, i2i_cls = {
                "sd1": (StableDiffusionPipeline, StableDiffusionImg2ImgPipeline),
                "sdxl": (StableDiffusionXLPipeline, StableDiffusionXLImg2ImgPipeline),
            }[family]
            t2i = t2i_cls.from_pretrained(fx.FIX / folder, torch_dtype=torch.float32, **kwargs)
            i2i = i2i_cls(**t2i.components)
            for p in (t2i, i2i):
                p.set_progress_bar_config(disable=True)
                p._lantern_default = t2i.scheduler
            pipes[family] = (t2i, i2i)
        t2i, i2i = pipes[family]
        for p in (t2i, i2i):
            refs.set_scheduler(p, sched)
        neg = NEGATIVE if g > 1 else None
        with torch.no_grad():
            latents = t2i(
                prompt=PROMPT, negative_prompt=neg, num_inference_steps=steps, guidance_scale=g,
                height=h, width=w, generator=torch.Generator("cpu").manual_seed(seed), output_type="latent",
            ).images
            tw, th = int(w * scale) // 8 * 8, int(h * scale) // 8 * 8
            if upscaler == "lanczos":
                image = t2i.vae.decode(latents / t2i.vae.config.scaling_factor).sample
                image = t2i.image_processor.postprocess(image, output_type="pil")[0]
                start = image.resize((tw, th), Image.LANCZOS)
            else:
                mode = "bilinear" if upscaler == "latent" else "nearest"
                start = F.interpolate(latents, size=(th // 8, tw // 8), mode=mode)
            run = hires_steps or steps
            n = schedule_steps(run, strength)
            out = i2i(
                prompt=PROMPT, negative_prompt=neg, image=start, strength=strength, num_inference_steps=n,
                guidance_scale=g, generator=torch.Generator("cpu").manual_seed(seed), output_type="np",
            ).images[0]
        file = f"{name}.png"
        Image.fromarray((out * 255).round().astype("uint8")).save(OUT / file, optimize=False)
        records.append(dict(
            name=name, file=file, model=refs.MODELS[family][0], scheduler=sched, seed=str(seed), width=w, height=h,
            scale=scale, steps=steps, hires_steps=hires_steps, strength=strength, upscaler=upscaler, guidance=g,
            prompt=PROMPT, negative_prompt=neg, out_width=tw, out_height=th,
            pixel_std=round(float(np.std(out * 255)), 2),
        ))
        print(f"{name:24} {tw}x{th} n={n} std={records[-1]['pixel_std']}", flush=True)
    fx.write_json(OUT / "cases.json", {"cases": records})


if __name__ == "__main__":
    main()
