#!/usr/bin/env python3
"""Time the same measurements as `lantern bench` with diffusers (PyTorch, CPU, fp32) on the
same model folder and thread count. Prints one JSON line per measurement.

    python3 tools/bench_diffusers.py --model DIR --threads 2 --only unet512 [--repeats 3]
"""

import argparse
import sys
import time

import torch

from bench_common import NEGATIVE, PROMPT, reporter
from bench_common import best_of as timed

report = reporter("diffusers")


def best_of(repeats, fn):
    return timed(repeats, fn)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="all")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)

    from diffusers import DiffusionPipeline, EulerDiscreteScheduler

    t = time.perf_counter()
    # SD 1.x/2.x or SDXL, as the folder's model_index.json says (the tiny fixtures too).
    try:
        pipe = DiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float32, safety_checker=None)
    except OSError:
        # A folder holding only the fp16 variant's files (as the SDXL fixture), computed in f32.
        pipe = DiffusionPipeline.from_pretrained(
            args.model, torch_dtype=torch.float32, safety_checker=None, variant="fp16"
        )
    xl = hasattr(pipe, "text_encoder_2")
    pipe.set_progress_bar_config(disable=True)
    report("load", time.perf_counter() - t)
    wants = lambda n: args.only in ("all", n)

    def encode():
        # SDXL's encode_prompt takes a second prompt (for its second text encoder) first.
        if xl:
            return pipe.encode_prompt(PROMPT, None, "cpu", 1, True, NEGATIVE)
        return pipe.encode_prompt(PROMPT, "cpu", 1, True, NEGATIVE)

    if wants("clip"):
        report("clip", best_of(args.repeats, encode))

    if xl:
        emb, neg, pooled, neg_pooled = encode()
    else:
        emb, neg = encode()
    context = torch.cat([neg, emb])
    factor = pipe.vae_scale_factor
    for name, side in (("unet256", 256), ("unet512", 512)):
        if wants(name):
            x = torch.randn(2, pipe.unet.config.in_channels, side // factor, side // factor)
            extra = {}
            if xl:
                # SDXL's size conditioning: original size, crop (0, 0), target size.
                ids = torch.tensor([[side, side, 0, 0, side, side]] * 2, dtype=torch.float32)
                extra = dict(added_cond_kwargs={"text_embeds": torch.cat([neg_pooled, pooled]), "time_ids": ids})
            report(name, best_of(args.repeats, lambda: pipe.unet(x, 500, context, **extra).sample.sum().item()), batch="2")

    if wants("vae512"):
        z = torch.randn(1, pipe.vae.config.latent_channels, 512 // factor, 512 // factor)
        report("vae512", best_of(args.repeats, lambda: pipe.vae.decode(z / pipe.vae.config.scaling_factor).sample))

    def generate(steps, guidance):
        g = torch.Generator().manual_seed(1)
        t = time.perf_counter()
        pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=steps, guidance_scale=guidance,
             height=512, width=512, generator=g, output_type="np")
        return time.perf_counter() - t

    if wants("gen512"):
        report("gen512", generate(args.steps, 7.5), steps=str(args.steps))
    if wants("turbo512"):
        pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
        total = generate(1, 0.0)
        z = torch.zeros(1, pipe.vae.config.latent_channels, 512 // factor, 512 // factor)
        t = time.perf_counter()
        pipe.vae.decode(z)
        report("turbo512", total, vae_share=f"{(time.perf_counter() - t) / total:.2f}")


if __name__ == "__main__":
    sys.exit(main())
