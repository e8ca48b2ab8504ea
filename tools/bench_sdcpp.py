#!/usr/bin/env python3
"""Time the same measurements as `lantern bench` with stable-diffusion.cpp (ggml, CPU, fp32
weights) on the same weights and thread count; prints one JSON line per measurement with
"impl": "sdcpp". sd.cpp comes from the `cyllama` wheel (PyPI), which bundles it prebuilt
(PyPI's stable-diffusion-cpp-python is source only).

    python3 tools/bench_sdcpp.py --model DIR --threads 2 --only unet512 [--repeats 3] [--steps 20]

Checkpoint. sd.cpp loads single-file (LDM layout) checkpoints, not diffusers folders. The
first run writes BENCH_CACHE/<folder name>.safetensors (e.g. .bench-cache/sd15.safetensors;
BENCH_CACHE defaults to .bench-cache), fp32, with the converter of
tools/make_single_file_fixtures.py (unet_ldm, vae_to_ldm, clip_to_ldm: the same mapping the
single-file fixtures use), in a child process, with a stamp of the source files beside it;
reported on its own line ("name": "convert", not a measurement).

The context is made with n_threads = --threads, wtype left to the file (f32),
free_params_immediately off (so one context serves several generations), flash attention
off (sd.cpp's default; --flash-attn turns it on), VAE tiling off. "load" is creating the
context (reading the checkpoint). Precision: not quite fp32 - sd.cpp's Conv2d blocks declare
their weights GGML_TYPE_F16 whatever the file or wtype says (ggml_extend.hpp), so every
convolution runs im2col + matmul in f16 (f32 accumulation); linear/attention weights, norms
and the CLIP text encoder stay f32. Its log says so: "unet params backend buffer size =
2155 MB" for an 860M-parameter UNet (3440 MB in f32), "vae ... 94 MB" for the 49M-parameter
decoder.

What sd.cpp's API lets us time - it only exposes whole generations, plus a progress callback
(called after every sampling step) and its log lines:
  * unet256 / unet512: one generation at 256^2 / 512^2 with cfg 7.5 and K = repeats + 2
    steps; the callback's timestamps give each step's wall time (sd.cpp runs one CFG step as
    two UNet calls, cond then uncond, batch 1 each, plus the sampler's arithmetic); the first
    step (graph allocation) is the warm-up and the fastest of the others is reported, as
    best-of for the other engines; "step_times" lists them. With --diff-check the line also
    carries "diff_per_step": (time of the K-step generation - time of a 1-step one) / (K - 1),
    the same quantity measured the other way (it costs one more generation with its VAE
    decode, so it is off by default; a contended 256^2 check gave 12.65 s by the callbacks,
    12.86 s by the difference). CFG: sd.cpp's sampler runs the uncond pass when img_cfg_scale
    != 1, and img_cfg_scale defaults to inf = "same as cfg_scale"; with --cfg 1 there is one
    UNet call per step, and a 256^2 step took 7.3-9.7 s against 12.6-26 s at cfg 7.5
    (contended runs, so only the direction is telling).
  * vae512: the "decode_first_stage completed, taking X s" figure
    from sd.cpp's log in 1-step 512^2 generations (fastest of repeats, after a warm-up).
  * clip: the "get_learned_condition completed, taking X s" log figure (prompt and negative
    prompt, two CLIP runs) from the same generations (256^2 ones when vae512 is not wanted).
  * gen512: one txt2img 512^2 generation, --steps steps (20), cfg 7.5, sd.cpp's default
    sampler for SD 1.x (reported in "sampler"; euler_a: one UNet evaluation pair per step,
    so 20 steps = 40 UNet calls at batch 1, where diffusers' and Lantern's PNDM take 21
    pairs), wall time of the generate() call, which includes text encoding, sampling, VAE
    decode and the conversion to an 8-bit image.

ISA. The cyllama 0.2.18 wheel's ggml is linked into stable_diffusion.*.so (no separate
libggml-cpu-*.so variants, so GGML_BACKEND_PATH has nothing to choose from) and is built for
AVX2 + FMA + F16C only: get_system_info() says "AVX2 = 1 | AVX512 = 0", and the .so has no zmm
instruction at all (objdump -d | grep -c zmm = 0; 11840 ymm). So sd.cpp runs AVX2 kernels
on every machine, ISA=avx2 or not; nothing at run time can change that (rebuilding with
GGML_NATIVE / GGML_AVX512 would). Each line carries "system_info" with the feature flags.
"""

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from bench_common import MEASURES, NEGATIVE, PROMPT, ROOT, bench_cache, cpu_seconds, reporter

report = reporter("sdcpp")


def checkpoint_path(model):
    cache = bench_cache()
    return cache / f"{Path(model).resolve().name}.safetensors"


def stamp_of(model):
    files = sorted(Path(model).rglob("*.safetensors"))
    return {"files": [[str(p.relative_to(model)), p.stat().st_size, p.stat().st_mtime] for p in files]}


def write_checkpoint(model, out):
    """diffusers folder -> one LDM-layout fp32 file, with make_single_file_fixtures' converter."""
    import torch

    sys.path.insert(0, str(ROOT / "tools"))
    import make_single_file_fixtures as sf

    started = time.perf_counter()
    folder = Path(model)
    sd = {}
    sd.update(sf.unet_ldm(folder))
    sd.update(sf.vae_to_ldm(sf.read(folder, "vae")))
    sd.update(sf.clip_to_ldm(sf.read(folder, "text_encoder"), "cond_stage_model."))
    sd["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77, dtype=torch.int64)[None]
    sched = json.loads((folder / "scheduler/scheduler_config.json").read_text())
    betas = torch.linspace(sched["beta_start"] ** 0.5, sched["beta_end"] ** 0.5, sched["num_train_timesteps"], dtype=torch.float64) ** 2
    sd["alphas_cumprod"] = torch.cumprod(1 - betas, 0).float()
    tmp = out.with_name(out.name + ".partial")
    sf.save(tmp, sd, torch.float32)
    tmp.rename(out)
    report("convert", time.perf_counter() - started)


def ensure_checkpoint(model):
    out = checkpoint_path(model)
    stamp = out.with_name(out.name + ".json")
    want = json.loads(json.dumps(stamp_of(model)))
    if out.exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return out
    print(f"== writing the single-file checkpoint {out} (once)", file=sys.stderr, flush=True)
    out.unlink(missing_ok=True)
    subprocess.run([sys.executable, __file__, "--model", str(model), "--convert-only"], check=True)
    stamp.write_text(json.dumps(want))
    return out


class Recorder:
    """Collects sd.cpp's progress callbacks (with wall-clock stamps) and log lines."""

    def __init__(self, sd, verbose):
        self.verbose = verbose
        self.steps, self.logs = [], []
        sd.set_progress_callback(self.progress)
        sd.set_log_callback(self.log)

    def progress(self, step, total, seconds):
        self.steps.append((step, total, seconds, time.perf_counter()))

    def log(self, level, text):
        self.logs.append(text.rstrip())
        if self.verbose:
            print(f"[sd.cpp] {text.rstrip()}", file=sys.stderr, flush=True)

    def reset(self):
        self.steps.clear()
        self.logs.clear()

    def find(self, what):
        """Seconds from sd.cpp's "<what> completed, taking 2.59s" (or "... 719 ms") log line."""
        for line in self.logs:
            m = re.search(re.escape(what) + r" completed, taking ([\d.]+) ?(ms|s)\b", line)
            if m:
                return float(m[1]) / (1000 if m[2] == "ms" else 1)
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="all")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=7.5, help="guidance scale (1.0 = no CFG: one UNet call per step)")
    ap.add_argument("--flash-attn", action="store_true")
    ap.add_argument("--diff-check", action="store_true",
                    help="unet256/512: also time a 1-step generation and report (T_K - T_1) / (K - 1)")
    ap.add_argument("--verbose", action="store_true", help="sd.cpp's log lines to stderr")
    ap.add_argument("--save", metavar="PNG", help="write the gen512 picture here")
    ap.add_argument("--prepare", action="store_true", help="only make sure the converted model is in the cache")
    ap.add_argument("--convert-only", action="store_true", help="(internal) write the checkpoint and exit")
    args = ap.parse_args()
    if args.only not in ("all",) + MEASURES:
        ap.error(f"unknown measurement {args.only!r}")
    if args.prepare:
        ensure_checkpoint(args.model)
        return 0
    if args.convert_only:
        return write_checkpoint(args.model, checkpoint_path(args.model))

    ckpt = ensure_checkpoint(args.model)
    import cyllama.sd as sd

    info = " ".join(sd.get_system_info().split())
    rec = Recorder(sd, args.verbose)
    wants = lambda n: args.only in ("all", n)

    t = time.perf_counter()
    params = sd.SDContextParams(model_path=str(ckpt), n_threads=args.threads)
    params.free_params_immediately = False
    params.vae_decode_only = True
    if args.flash_attn:
        params.diffusion_flash_attn = True
    ctx = sd.SDContext(params)
    report("load", time.perf_counter() - t, system_info=info)
    sampler = ctx.get_default_sample_method()

    def generate(side, steps, cfg=None):
        rec.reset()
        cpu, t = cpu_seconds(), time.perf_counter()
        images = ctx.generate(PROMPT, negative_prompt=NEGATIVE, width=side, height=side, seed=1,
                              sample_steps=steps, cfg_scale=args.cfg if cfg is None else cfg)
        wall = time.perf_counter() - t
        # sd.cpp calls back once before sampling (step 0) and after each step (1..steps).
        done = [e for e in rec.steps if e[1] == steps and e[0] >= 1]
        if [e[0] for e in done] != list(range(1, steps + 1)):
            raise SystemExit(f"sd.cpp's progress callbacks {rec.steps} do not show {steps} steps")
        return wall, (cpu_seconds() - cpu) / wall, images

    common = dict(cfg=args.cfg, system_info=info)
    for name, side in (("unet256", 256), ("unet512", 512)):
        if wants(name):
            k = max(3, args.repeats + 2)
            extra = {}
            if args.diff_check:
                one, _, _ = generate(side, 1)
            total, util, _ = generate(side, k)
            if args.diff_check:
                extra["diff_per_step"] = f"{(total - one) / (k - 1):.4f}"
            # Wall time between the callbacks after steps 1..k: steps 2..k (step 1 allocates
            # the graph: the warm-up).
            stamps = [e[3] for e in rec.steps if e[0] >= 1]
            step_times = [b - a for a, b in zip(stamps, stamps[1:])]
            report(name, min(step_times), batch="2 (cond+uncond as two batch-1 calls)" if args.cfg != 1 else "1",
                   step_times=" ".join(f"{x:.3f}" for x in step_times), steps=k, cpu_util=f"{util:.2f}", **extra, **common)

    if wants("clip") or wants("vae512"):
        # 1-step generations; at 256^2 when only CLIP is wanted (its time does not depend on
        # the size, and the VAE decode that comes with each generation is 4x cheaper).
        side = 512 if wants("vae512") else 256
        clip, vae = [], []
        for i in range(max(1, args.repeats) + 1):
            generate(side, 1)
            clip.append(rec.find("get_learned_condition"))
            vae.append(rec.find("decode_first_stage"))
        if None in clip or None in vae:
            print("\n".join(rec.logs), file=sys.stderr)
            raise SystemExit(f"could not find the timings in sd.cpp's log (clip {clip}, vae {vae})")
        if wants("clip"):
            report("clip", min(clip[1:]), source=f"sd.cpp log: get_learned_condition ({side}^2 1-step generations)", **common)
        if wants("vae512"):
            report("vae512", min(vae[1:]), source="sd.cpp log: decode_first_stage", **common)

    if wants("gen512"):
        total, util, images = generate(512, args.steps)
        if args.save:
            images[0].save(args.save)
        report("gen512", total, steps=args.steps, unet_calls=args.steps * (2 if args.cfg != 1 else 1),
               sampler=sd.sample_method_name(sampler) if sampler is not None else "default", cpu_util=f"{util:.2f}",
               clip_s=rec.find("get_learned_condition"), sampling_s=rec.find("sampling"),
               vae_s=rec.find("decode_first_stage"), **common)


if __name__ == "__main__":
    sys.exit(main())
