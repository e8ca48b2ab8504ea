#!/usr/bin/env python3
"""img2img and inpainting references: diffusers' own pipelines on the tiny fixtures, seeded with
`generator=torch.Generator("cpu").manual_seed(seed)`, which `lantern generate --rng cpu
--init-image … [--mask …] --strength S` must reproduce (tests/img2img.rs).

    /tmp/fxv/bin/python tools/make_img2img_refs.py     (versions: tools/requirements-fixtures.txt)

Writes:
- tests/fixtures/sdxl-inpaint-tiny/: sdxl-tiny the same way (as SDXL inpainting 0.1);
- tests/fixtures/sdxl-refiner-tiny/: an SDXL refiner (second text encoder only, aesthetic-score
  conditioning), its encoder, tokenizer, VAE and scheduler copied from sdxl-tiny;
- tests/fixtures/sd1-inpaint-tiny/: sd1-tiny with an inpainting UNet (in_channels 9: the
  latents, the mask, the masked picture's latents), as sd-1.5-inpainting is laid out; the
  other components are byte-identical copies of sd1-tiny's (git stores them once);
- tests/fixtures/reference/img2img/: the start pictures (`square.png` 64×64, `wide.png` 72×48,
  drawn from a formula) and their masks (`square-mask.png`, `wide-mask.png`: an ellipse with a
  soft grey edge, which diffusers binarizes at one half), then for each case `<name>.png` and
  `cases.json`.

Pipelines: StableDiffusionImg2ImgPipeline (sd1, sd2), StableDiffusionXLImg2ImgPipeline (sdxl),
StableDiffusionXLInpaintPipeline (sdxl-tiny and sdxl-inpaint-tiny),
StableDiffusionInpaintPipeline with sd1-tiny (a regular UNet: the latents outside the mask are
replaced by the re-noised original after every step) and with sd1-inpaint-tiny (9 channels).
Every sampler Lantern offers appears, at strengths from 0.2 to 1.0, square and not.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as fx  # noqa: E402
from diffusers import (  # noqa: E402
    EulerAncestralDiscreteScheduler,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
)

SCHEDULERS = dict(fx.SCHEDULERS)
SCHEDULERS["euler-a"] = (EulerAncestralDiscreteScheduler, {})

OUT = fx.FIX / "reference" / "img2img"
STEPS = 10
PROMPT = "a small boat on a calm lake"
NEGATIVE = "blurry"
PICTURES = {"square": (64, 64), "wide": (72, 48)}

# (name, pipeline kind, scheduler, seed, picture, strength, guidance)
CASES = {
    "sd1": [
        ("default-75", "img2img", "default", 0, "square", 0.75, 7.5),
        ("ddim-50", "img2img", "ddim", 42, "wide", 0.5, 1.0),
        ("pndm-20", "img2img", "pndm", 7, "square", 0.2, 7.5),
        ("euler-60", "img2img", "euler", 1234, "wide", 0.6, 7.5),
        ("euler-a-75", "img2img", "euler-a", 2**32 + 5, "square", 0.75, 7.5),
        ("dpmpp-2m-30", "img2img", "dpmpp-2m", 99, "square", 0.3, 1.0),
        ("dpmpp-2m-karras-100", "img2img", "dpmpp-2m-karras", 31337, "wide", 1.0, 7.5),
        ("unipc-80", "img2img", "unipc", 5, "square", 0.8, 7.5),
        ("lms-50", "img2img", "lms", 11, "wide", 0.5, 7.5),
        ("heun-50", "img2img", "heun", 2**31 - 1, "square", 0.5, 1.0),
        ("inpaint-euler-75", "inpaint", "euler", 3, "square", 0.75, 7.5),
        ("inpaint-euler-a-100", "inpaint", "euler-a", 8, "square", 1.0, 7.5),
        ("inpaint-ddim-60", "inpaint", "ddim", 21, "wide", 0.6, 1.0),
        ("inpaint-dpmpp-2m-100", "inpaint", "dpmpp-2m", 77, "wide", 1.0, 7.5),
        ("inpaint-heun-80", "inpaint", "heun", 123, "square", 0.8, 7.5),
    ],
    "sd1-inpaint": [
        ("euler-100", "inpaint", "euler", 1, "square", 1.0, 7.5),
        ("euler-a-75", "inpaint", "euler-a", 2, "square", 0.75, 7.5),
        ("dpmpp-2m-50", "inpaint", "dpmpp-2m", 3, "wide", 0.5, 1.0),
        ("default-100", "inpaint", "default", 4, "wide", 1.0, 7.5),
        ("lms-90", "inpaint", "lms", 5, "square", 0.9, 7.5),
    ],
    "sd2": [
        ("default-70", "img2img", "default", 13, "square", 0.7, 7.5),
        ("euler-a-50", "img2img", "euler-a", 14, "wide", 0.5, 7.5),
        ("unipc-40", "img2img", "unipc", 15, "square", 0.4, 1.0),
    ],
    "sdxl": [
        ("default-60", "img2img", "default", 16, "square", 0.6, 7.5),
        ("dpmpp-2m-50", "img2img", "dpmpp-2m", 17, "wide", 0.5, 7.5),
        ("euler-a-100", "img2img", "euler-a", 18, "square", 1.0, 1.0),
        ("heun-30", "img2img", "heun", 19, "wide", 0.3, 7.5),
        ("inpaint-euler-a-80", "inpaint", "euler-a", 20, "square", 0.8, 7.5),
        ("inpaint-dpmpp-2m-100", "inpaint", "dpmpp-2m", 21, "wide", 1.0, 7.5),
    ],
    "sdxl-refiner": [
        ("default-30", "img2img", "default", 25, "square", 0.3, 7.5),
        ("euler-a-50", "img2img", "euler-a", 26, "wide", 0.5, 7.5),
        ("dpmpp-2m-25", "img2img", "dpmpp-2m", 27, "square", 0.25, 1.0),
    ],
    "sdxl-inpaint": [
        ("default-100", "inpaint", "default", 22, "square", 1.0, 7.5),
        ("euler-a-60", "inpaint", "euler-a", 23, "wide", 0.6, 7.5),
        ("unipc-90", "inpaint", "unipc", 24, "square", 0.9, 1.0),
    ],
}

MODELS = {
    "sd1": ("sd1-tiny", {"safety_checker": None}),
    "sd1-inpaint": ("sd1-inpaint-tiny", {"safety_checker": None}),
    "sd2": ("sd2-tiny", {"safety_checker": None}),
    "sdxl": ("sdxl-tiny", {"variant": "fp16"}),
    "sdxl-inpaint": ("sdxl-inpaint-tiny", {"variant": "fp16"}),
    "sdxl-refiner": ("sdxl-refiner-tiny", {"variant": "fp16"}),
}


def make_inpaint_fixture():
    """sd1-tiny with a 9-channel UNet (same shape otherwise, its own random weights)."""
    src, dst = fx.FIX / "sd1-tiny", fx.FIX / "sd1-inpaint-tiny"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    shutil.rmtree(dst / "unet")
    unet = fx.sd1_unet(31, in_channels=9)
    fx.enliven_unet(unet)
    with torch.no_grad():
        # Make the mask and masked-picture channels matter as much as the latents.
        unet.conv_in.weight[:, 4:].mul_(3)
    unet.save_pretrained(dst / "unet")
    index = (dst / "model_index.json").read_text().replace("StableDiffusionPipeline", "StableDiffusionInpaintPipeline")
    (dst / "model_index.json").write_text(index)


def make_sdxl_inpaint_fixture():
    """sdxl-tiny with a 9-channel UNet (as SDXL inpainting 0.1 is laid out), fp16 variant."""
    src, dst = fx.FIX / "sdxl-tiny", fx.FIX / "sdxl-inpaint-tiny"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    shutil.rmtree(dst / "unet")
    unet = fx.sdxl_unet(41, in_channels=9)
    fx.enliven_unet(unet)
    with torch.no_grad():
        unet.conv_in.weight[:, 4:].mul_(3)
    fx.save_fp16_variant(unet, dst / "unet")
    index = (dst / "model_index.json").read_text().replace("StableDiffusionXLPipeline", "StableDiffusionXLInpaintPipeline")
    (dst / "model_index.json").write_text(index)


def make_sdxl_refiner_fixture():
    """An SDXL refiner laid out as stabilityai/stable-diffusion-xl-refiner-1.0: only the second
    (OpenCLIP-style, projected) text encoder, a UNet conditioned on its hidden states alone and on
    five size numbers (original size, crop, aesthetic score), `requires_aesthetics_score`."""
    src, dst = fx.FIX / "sdxl-tiny", fx.FIX / "sdxl-refiner-tiny"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir()
    for part in ["text_encoder_2", "tokenizer_2", "vae", "scheduler"]:
        shutil.copytree(src / part, dst / part)
    width = json.loads((src / "text_encoder_2" / "config.json").read_text())["hidden_size"]
    projection = json.loads((src / "text_encoder_2" / "config.json").read_text())["projection_dim"]
    unet = fx.sdxl_unet(51, cross_attention_dim=width, time_ids=5, pooled=projection)
    fx.save_fp16_variant(fx.enliven_unet(unet), dst / "unet")
    fx.write_json(
        dst / "model_index.json",
        {
            "_class_name": "StableDiffusionXLImg2ImgPipeline",
            "_diffusers_version": "0.19.0.dev0",
            "force_zeros_for_empty_prompt": False,
            "requires_aesthetics_score": True,
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "text_encoder": [None, None],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": [None, None],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )


def draw(width, height):
    """Gradients, a ripple and a hard-edged disc (as tools/make_vae_encoder_refs.py)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255.0 * x / (width - 1)
    g = 127.5 + 127.5 * np.sin(x / 5.0 + y / 7.0)
    b = 255.0 * y / (height - 1)
    disc = (x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (min(width, height) * 0.25) ** 2
    r, g, b = (np.where(disc, c, v) for c, v in ((240.0, r), (30.0, g), (60.0, b)))
    return np.clip(np.round(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


def draw_mask(width, height):
    """An ellipse left of centre, white inside, a grey ramp 6 pixels wide around it."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    d = np.sqrt(((x - width * 0.35) / (width * 0.3)) ** 2 + ((y - height * 0.55) / (height * 0.35)) ** 2)
    v = np.clip((1.15 - d) / 0.3, 0.0, 1.0) * 255.0
    return np.round(v).astype(np.uint8)


# SD-Turbo's and SDXL-Turbo's own scheduler (stabilityai/sd-turbo, sdxl-turbo): Euler with
# trailing timesteps. The turbo cases run sd2-tiny / sdxl-tiny with it, in a copy named like the
# real repos; tests/img2img.rs makes the same copy.
TURBO_SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "trailing",
    "trained_betas": None,
    "use_karras_sigmas": False,
}

# (name, base fixture, pipeline, seed, picture, steps, strength) — diffusers' documented turbo
# img2img: 2 steps at strength 0.5 (one step runs), guidance 0.
TURBO_CASES = [
    ("sd-turbo-50", "sd2-tiny", StableDiffusionImg2ImgPipeline, 61, "square", 2, 0.5, {"safety_checker": None}),
    ("sdxl-turbo-50", "sdxl-tiny", StableDiffusionXLImg2ImgPipeline, 62, "wide", 2, 0.5, {"variant": "fp16"}),
    ("sdxl-turbo-75", "sdxl-tiny", StableDiffusionXLImg2ImgPipeline, 63, "square", 4, 0.75, {"variant": "fp16"}),
]


def turbo_copy(base, tmp):
    dst = Path(tmp) / base.replace("-tiny", "-turbo-tiny")
    if not dst.exists():
        shutil.copytree(fx.FIX / base, dst)
    fx.write_json(dst / "scheduler" / "scheduler_config.json", TURBO_SCHEDULER)
    # diffusers builds the class model_index.json names: it must say Euler too, as the real
    # repos' do.
    index = json.loads((dst / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", TURBO_SCHEDULER["_class_name"]]
    fx.write_json(dst / "model_index.json", index)
    return dst


def make_turbo_refs(pictures, records):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, base, cls, seed, picture, steps, strength, kwargs in TURBO_CASES:
            pipe = cls.from_pretrained(turbo_copy(base, tmp), torch_dtype=torch.float32, **kwargs)
            pipe.set_progress_bar_config(disable=True)
            w, h = PICTURES[picture]
            with torch.no_grad():
                image = pipe(
                    prompt=PROMPT,
                    image=pictures[picture],
                    strength=strength,
                    num_inference_steps=steps,
                    guidance_scale=0.0,
                    generator=torch.Generator("cpu").manual_seed(seed),
                    output_type="np",
                ).images[0]
            file = f"{name}.png"
            Image.fromarray((image * 255).round().astype("uint8")).save(OUT / file, optimize=False)
            records.append(
                dict(
                    name=name, file=file, model=base, kind="turbo", scheduler="default", seed=str(seed),
                    picture=f"{picture}.png", mask=None, width=w, height=h, strength=strength, guidance=0.0,
                    prompt=PROMPT, negative_prompt=None, steps=steps,
                    pixel_std=round(float(np.std(image * 255)), 2),
                )
            )
            print(f"{'turbo':12} {name:22} std={records[-1]['pixel_std']}", flush=True)
    fx.write_json(OUT / "turbo_scheduler.json", TURBO_SCHEDULER)


def set_scheduler(pipe, name):
    spec = SCHEDULERS[name]
    if spec is None:
        pipe.scheduler = pipe._lantern_default.__class__.from_config(pipe._lantern_default.config)
    else:
        cls, extra = spec
        pipe.scheduler = cls.from_config(pipe._lantern_default.config, **extra)


def load(family, kind):
    folder, kwargs = MODELS[family]
    cls = {
        ("sdxl", "img2img"): StableDiffusionXLImg2ImgPipeline,
        ("sdxl", "inpaint"): StableDiffusionXLInpaintPipeline,
        ("sdxl-refiner", "img2img"): StableDiffusionXLImg2ImgPipeline,
        ("sdxl-inpaint", "inpaint"): StableDiffusionXLInpaintPipeline,
        ("sd1", "img2img"): StableDiffusionImg2ImgPipeline,
        ("sd2", "img2img"): StableDiffusionImg2ImgPipeline,
    }.get((family, kind), StableDiffusionInpaintPipeline)
    pipe = cls.from_pretrained(fx.FIX / folder, torch_dtype=torch.float32, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    pipe._lantern_default = pipe.scheduler
    return pipe


def main():
    make_inpaint_fixture()
    make_sdxl_inpaint_fixture()
    make_sdxl_refiner_fixture()
    fx.clean_folder(OUT)
    pictures, masks = {}, {}
    for name, (w, h) in PICTURES.items():
        Image.fromarray(draw(w, h), mode="RGB").save(OUT / f"{name}.png", optimize=True)
        Image.fromarray(draw_mask(w, h), mode="L").save(OUT / f"{name}-mask.png", optimize=True)
        pictures[name] = Image.open(OUT / f"{name}.png").convert("RGB")
        masks[name] = Image.open(OUT / f"{name}-mask.png")
    records = []
    for family, cases in CASES.items():
        pipes = {}
        for name, kind, sched, seed, picture, strength, g in cases:
            if kind not in pipes:
                pipes[kind] = load(family, kind)
            pipe = pipes[kind]
            set_scheduler(pipe, sched)
            w, h = PICTURES[picture]
            kwargs = dict(
                prompt=PROMPT,
                negative_prompt=NEGATIVE if g > 1 else None,
                image=pictures[picture],
                strength=strength,
                num_inference_steps=STEPS,
                guidance_scale=g,
                generator=torch.Generator("cpu").manual_seed(seed),
                output_type="np",
            )
            if kind == "inpaint":
                kwargs.update(mask_image=masks[picture], height=h, width=w)
            with torch.no_grad():
                image = pipe(**kwargs).images[0]
            file = f"{family}-{name}.png"
            Image.fromarray((image * 255).round().astype("uint8")).save(OUT / file, optimize=False)
            records.append(
                dict(
                    name=f"{family}-{name}",
                    file=file,
                    model=MODELS[family][0],
                    kind=kind,
                    scheduler=sched,
                    seed=str(seed),
                    picture=f"{picture}.png",
                    mask=f"{picture}-mask.png" if kind == "inpaint" else None,
                    width=w,
                    height=h,
                    strength=strength,
                    guidance=g,
                    prompt=PROMPT,
                    negative_prompt=NEGATIVE if g > 1 else None,
                    steps=STEPS,
                    pixel_std=round(float(np.std(image * 255)), 2),
                )
            )
            print(f"{family:12} {name:22} std={records[-1]['pixel_std']}", flush=True)
    make_turbo_refs(pictures, records)
    fx.write_json(OUT / "cases.json", {"cases": records})


if __name__ == "__main__":
    main()
