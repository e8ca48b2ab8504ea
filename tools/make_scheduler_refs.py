#!/usr/bin/env python3
"""Reference trajectories for Lantern's samplers, recorded from diffusers itself.

    /opt/fixenv/bin/python tools/make_scheduler_refs.py     (versions: tools/requirements-fixtures.txt)

What it writes (seeded: a second run gives byte-identical files):
  tests/fixtures/schedulers/configs/<name>/scheduler_config.json
      the scheduler folders the cases start from: the real SD 1.5 / SD 2.1 / SDXL / SD-Turbo
      hub configs plus variants that switch on the options Lantern implements
  tests/fixtures/schedulers/refs/<name>.json
      one case per (sampler, step count): the scheduler diffusers builds exactly as a user
      switching samplers would (`Folder.from_pretrained(dir)` then `Cls.from_config(that.config,
      **extra)`, so `_use_default_values` behaves as for a real folder), its timesteps and
      init_noise_sigma, and a whole denoising loop run the way StableDiffusionPipeline runs it
      with a deterministic stand-in for the UNet (`pseudo_unet`, mirrored in tests/schedulers.rs).

Tensors are stored as base64 of little-endian float32 (shape [1, 4, 3, 5]) to keep the files
small. `diffusers_non_finite_from` marks the step where diffusers' latents turned NaN (its
float32 arithmetic breaking down); from there on Lantern only has to stay finite. A `scaled` entry is null when diffusers' scale_model_input returned its input unchanged
(the Rust test then checks that ours did too). Euler-ancestral cases also store the noise
diffusers drew at every step, so the Rust side can replay it through a NoiseSource. A case
that diffusers itself refuses (for example PNDM's Runge-Kutta warm-up with fewer than 4 steps)
is stored with `error` set; Lantern must refuse it as well.
"""

import base64
import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import torch

import diffusers
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "schedulers"
SHAPE = (1, 4, 3, 5)

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

# `lantern generate --scheduler NAME` -> how a diffusers user gets the same sampler.
KINDS = {
    "default": None,
    "ddim": (DDIMScheduler, {}),
    "pndm": (PNDMScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler-a": (EulerAncestralDiscreteScheduler, {}),
    "dpmpp-2m": (DPMSolverMultistepScheduler, {}),
    "dpmpp-2m-karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
    "unipc": (UniPCMultistepScheduler, {}),
    "lms": (LMSDiscreteScheduler, {}),
    "heun": (HeunDiscreteScheduler, {}),
}

CLASS_KIND = {
    "DDIMScheduler": "ddim",
    "PNDMScheduler": "pndm",
    "EulerDiscreteScheduler": "euler",
    "EulerAncestralDiscreteScheduler": "euler-a",
    "DPMSolverMultistepScheduler": "dpmpp-2m",
    "UniPCMultistepScheduler": "unipc",
    "LMSDiscreteScheduler": "lms",
    "HeunDiscreteScheduler": "heun",
}

# ----------------------------------------------------------------------------------------
# The scheduler folders. The first four are the hub files of the model families Lantern
# targets, verbatim in content.

SD15 = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

SD21 = {
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.8.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

SDXL = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.19.0.dev0",
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
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}

SD_TURBO = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.24.0.dev0",
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

# Other beta schedules and options, as other real folders set them.

# google/ddpm-cifar10-32 style: linear betas, clip_sample on, no skip_prk_steps (so PNDM runs
# its Runge-Kutta warm-up), a DDPM-only variance_type that DPM-Solver accepts and ignores.
DDPM_LINEAR = {
    "_class_name": "DDPMScheduler",
    "_diffusers_version": "0.1.1",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "clip_sample": True,
    "num_train_timesteps": 1000,
    "trained_betas": None,
    "variance_type": "fixed_small",
}

COSINE = {
    "_class_name": "DDIMScheduler",
    "beta_schedule": "squaredcos_cap_v2",
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": True,
    "steps_offset": 0,
    "timestep_spacing": "linspace",
}

# Zero terminal SNR, v-prediction, trailing (the "Common Diffusion Noise Schedules" recipe).
ZSNR = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "steps_offset": 1,
    "timestep_spacing": "trailing",
}

# A fine-tune that ships DPM++ 2M Karras as its own scheduler.
DPM_KARRAS = {
    "_class_name": "DPMSolverMultistepScheduler",
    "_diffusers_version": "0.21.4",
    "algorithm_type": "dpmsolver++",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "dynamic_thresholding_ratio": 0.995,
    "euler_at_final": False,
    "lower_order_final": True,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "solver_order": 2,
    "solver_type": "midpoint",
    "steps_offset": 1,
    "thresholding": False,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": True,
}


def trained_betas_config():
    """An explicit `trained_betas` list (a bent linear schedule, 8 significant digits)."""
    t = np.linspace(0.0, 1.0, 1000)
    betas = 0.0001 + (0.015 - 0.0001) * t**1.3
    return {
        "_class_name": "LMSDiscreteScheduler",
        "num_train_timesteps": 1000,
        "trained_betas": [float(f"{b:.8g}") for b in betas],
        "beta_schedule": "this-is-ignored-when-trained_betas-is-set",
    }


def sd15_with(**fields):
    cfg = dict(SD15)
    cfg.update(fields)
    return cfg


# name -> (config, kinds to run, step counts)
ALL_KINDS = list(KINDS)
MAIN_STEPS = [1, 2, 4, 6, 14, 20]
EXTRA_STEPS = [1, 4, 15]
VARIANT_STEPS = [1, 2, 6, 15]
CONFIGS = {
    "sd15": (SD15, ALL_KINDS, MAIN_STEPS),
    "sd21": (SD21, ALL_KINDS, MAIN_STEPS),
    "sdxl": (SDXL, ALL_KINDS, MAIN_STEPS),
    "sd-turbo": (SD_TURBO, ALL_KINDS, MAIN_STEPS),
    # 1000/16 = 62.5: numpy's round-half-to-even decides every other trailing timestep.
    "sd-turbo-16": (SD_TURBO, ["euler", "ddim", "pndm", "dpmpp-2m"], [16]),
    # 1000/61 makes numpy's arange yield 62 trailing timesteps, the last one -1; diffusers'
    # σ-based samplers just run the extra step (DDIM/PNDM would index alphas_cumprod[-1]).
    "sd-turbo-61": (SD_TURBO, ["euler", "dpmpp-2m"], [61]),
    "ddpm-linear": (DDPM_LINEAR, [k for k in ALL_KINDS if k != "default"], [1, 4, 15]),
    "cosine": (COSINE, ALL_KINDS, EXTRA_STEPS),
    "zsnr": (ZSNR, ALL_KINDS, EXTRA_STEPS),
    "dpm-karras": (DPM_KARRAS, ALL_KINDS, EXTRA_STEPS),
    "trained-betas": (trained_betas_config(), ["default", "euler", "dpmpp-2m", "ddim"], EXTRA_STEPS),
    # Options that only a folder's own config switches on (run as `default`).
    "dpm-order3-heun": (
        sd15_with(
            _class_name="DPMSolverMultistepScheduler",
            solver_order=3,
            solver_type="heun",
            final_sigmas_type="sigma_min",
            timestep_spacing="trailing",
            prediction_type="v_prediction",
        ),
        ["default"],
        VARIANT_STEPS,
    ),
    "dpm-order3-euler-final": (
        sd15_with(
            _class_name="DPMSolverMultistepScheduler",
            solver_order=3,
            euler_at_final=True,
            lower_order_final=False,
            final_sigmas_type="sigma_min",
            timestep_spacing="linspace",
            prediction_type="sample",
        ),
        ["default"],
        VARIANT_STEPS,
    ),
    "dpm-classic": (
        sd15_with(
            _class_name="DPMSolverMultistepScheduler",
            algorithm_type="dpmsolver",
            beta_schedule="squaredcos_cap_v2",
            final_sigmas_type="sigma_min",
            lower_order_final=False,
            lambda_min_clipped=-5.1,
        ),
        ["default"],
        VARIANT_STEPS,
    ),
    "dpm-classic-zero": (
        sd15_with(_class_name="DPMSolverMultistepScheduler", algorithm_type="dpmsolver"),
        ["default"],
        [4],
    ),
    "unipc-order3-bh1": (
        sd15_with(
            _class_name="UniPCMultistepScheduler",
            solver_order=3,
            solver_type="bh1",
            disable_corrector=[1],
            use_karras_sigmas=True,
            final_sigmas_type="sigma_min",
            sigma_min=0.05,
            sigma_max=12.0,
        ),
        ["default"],
        VARIANT_STEPS,
    ),
    "unipc-noise-pred": (
        sd15_with(
            _class_name="UniPCMultistepScheduler",
            predict_x0=False,
            solver_order=3,
            lower_order_final=False,
            final_sigmas_type="sigma_min",
            timestep_spacing="leading",
            prediction_type="v_prediction",
        ),
        ["default"],
        VARIANT_STEPS,
    ),
    "euler-karras": (
        sd15_with(
            _class_name="EulerDiscreteScheduler",
            use_karras_sigmas=True,
            sigma_min=0.05,
            sigma_max=10.0,
            final_sigmas_type="sigma_min",
        ),
        # diffusers' from_config registers every key of the file on the config object, where
        # the Karras conversion of DPM-Solver and Heun finds sigma_min / sigma_max too.
        ["default", "dpmpp-2m", "dpmpp-2m-karras", "heun", "lms", "unipc"],
        VARIANT_STEPS,
    ),
    "euler-log-linear": (
        sd15_with(_class_name="EulerDiscreteScheduler", interpolation_type="log_linear", prediction_type="sample"),
        ["default"],
        VARIANT_STEPS,
    ),
    "euler-continuous-v": (
        sd15_with(
            _class_name="EulerDiscreteScheduler",
            timestep_type="continuous",
            prediction_type="v_prediction",
            use_karras_sigmas=True,
            timestep_spacing="trailing",
        ),
        ["default"],
        VARIANT_STEPS,
    ),
    "euler-a-vpred": (
        sd15_with(_class_name="EulerAncestralDiscreteScheduler", prediction_type="v_prediction"),
        ["default"],
        VARIANT_STEPS,
    ),
    "euler-a-sample": (
        sd15_with(_class_name="EulerAncestralDiscreteScheduler", prediction_type="sample"),
        ["default"],
        [4],
    ),
    "lms-karras": (
        sd15_with(_class_name="LMSDiscreteScheduler", use_karras_sigmas=True, timestep_spacing="trailing"),
        ["default"],
        VARIANT_STEPS,
    ),
    "lms-vpred-leading": (
        sd15_with(_class_name="LMSDiscreteScheduler", prediction_type="v_prediction", timestep_spacing="leading"),
        ["default"],
        VARIANT_STEPS,
    ),
    "heun-karras-clip": (
        sd15_with(
            _class_name="HeunDiscreteScheduler",
            use_karras_sigmas=True,
            clip_sample=True,
            clip_sample_range=2.0,
            prediction_type="v_prediction",
        ),
        ["default"],
        VARIANT_STEPS,
    ),
    "heun-exp-sample": (
        {"_class_name": "HeunDiscreteScheduler", "beta_schedule": "exp", "prediction_type": "sample"},
        ["default"],
        [1, 4, 15],
    ),
    "ddim-clip-sample-pred": (
        sd15_with(
            _class_name="DDIMScheduler",
            clip_sample=True,
            clip_sample_range=1.5,
            prediction_type="sample",
            set_alpha_to_one=True,
            timestep_spacing="trailing",
            rescale_betas_zero_snr=True,
        ),
        ["default"],
        VARIANT_STEPS,
    ),
    "pndm-prk-vpred": (
        sd15_with(skip_prk_steps=False, prediction_type="v_prediction", timestep_spacing="linspace"),
        ["default"],
        [1, 3, 4, 6, 15],
    ),
    "pndm-trailing": (
        sd15_with(timestep_spacing="trailing"),
        ["default"],
        VARIANT_STEPS,
    ),
}


# ----------------------------------------------------------------------------------------


def pseudo_unet(s: torch.Tensor, t) -> torch.Tensor:
    """The stand-in for the UNet: smooth, bounded, depends on both input and timestep."""
    t = torch.as_tensor(t)
    return torch.tanh(0.7 * s + t / 1000) * 0.9 - 0.05 * s


def b64(t: torch.Tensor) -> str:
    arr = t.detach().to(torch.float32).contiguous().numpy().astype("<f4")
    return base64.b64encode(arr.tobytes()).decode("ascii")


def build(folder: Path, kind: str):
    """Exactly what a diffusers user does: load the folder's scheduler, then switch class."""
    cfg = json.loads((folder / "scheduler_config.json").read_text())
    base_cls = getattr(diffusers, cfg["_class_name"])
    base = base_cls.from_pretrained(folder)
    spec = KINDS[kind]
    if spec is None:
        return base
    cls, extra = spec
    return cls.from_config(base.config, **extra)


def resolved_kind(sched) -> str:
    name = type(sched).__name__
    kind = CLASS_KIND[name]
    if kind == "dpmpp-2m" and sched.config.use_karras_sigmas:
        kind = "dpmpp-2m-karras"
    return kind


def run_case(folder: Path, kind: str, steps: int, seed: int) -> dict:
    case = {"kind": kind, "steps": steps, "seed": seed}
    try:
        sched = build(folder, kind)
        sched.set_timesteps(steps)
    except Exception as e:  # diffusers refuses: Lantern must refuse too
        case["error"] = f"{type(e).__name__}: {e}"
        return case

    # StableDiffusionPipeline finds the first step index by looking the first timestep up in
    # the schedule and takes its *second* occurrence when it repeats, which then runs off the
    # end of the sigmas (IndexError). The SDXL pipeline pins begin_index to 0 instead; Lantern
    # always starts at index 0, so such schedules are recorded the SDXL way.
    timesteps = sched.timesteps
    pinned = bool((timesteps == timesteps[0]).sum() > 1)
    if pinned:
        sched.set_begin_index(0)
        case["begin_index_pinned"] = True

    case["class"] = type(sched).__name__
    case["resolved_kind"] = resolved_kind(sched)
    case["timesteps"] = [float(t) for t in timesteps]
    init_sigma = sched.init_noise_sigma
    case["init_noise_sigma"] = float(init_sigma)

    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(SHAPE, generator=gen, dtype=torch.float32)
    case["x0"] = b64(x0)
    x = x0 * init_sigma  # StableDiffusionPipeline.prepare_latents

    ancestral = isinstance(sched, EulerAncestralDiscreteScheduler)
    noise_seed = seed + 1
    step_gen = torch.Generator().manual_seed(noise_seed) if ancestral else None

    scaled_rec, x_rec = [], []
    try:
        for i, t in enumerate(timesteps):
            s = sched.scale_model_input(x, t)
            if i == 0 and getattr(sched, "step_index", 0) not in (None, 0):
                raise AssertionError("first step_index is not 0; the Rust index mapping assumes it is")
            scaled_rec.append(None if torch.equal(s, x) else b64(s))
            out = pseudo_unet(s, t)
            kwargs = {"generator": step_gen} if ancestral else {}
            x = sched.step(out, t, x, **kwargs, return_dict=False)[0]
            x_rec.append(b64(x))
    except Exception as e:
        case["error"] = f"{type(e).__name__}: {e}"
        for key in ("class", "resolved_kind", "timesteps", "init_noise_sigma", "x0"):
            case.pop(key, None)
        return case

    case["scaled"] = scaled_rec
    case["x"] = x_rec
    # Where diffusers' own float32 arithmetic breaks down (NaN), Lantern must stay finite.
    bad = [i for i, xb in enumerate(x_rec) if not np.isfinite(np.frombuffer(base64.b64decode(xb), "<f4")).all()]
    if bad:
        case["diffusers_non_finite_from"] = bad[0]
    if ancestral:
        # Replay the generator: EulerAncestral draws exactly one randn of the latent shape per step.
        replay = torch.Generator().manual_seed(noise_seed)
        noise = [torch.randn(SHAPE, generator=replay, dtype=torch.float32) for _ in timesteps]
        assert torch.equal(replay.get_state(), step_gen.get_state()), "noise replay out of sync"
        case["noise"] = [b64(n) for n in noise]
    return case


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "configs").mkdir(parents=True)
    (OUT / "refs").mkdir(parents=True)
    for name, (cfg, kinds, steps_list) in CONFIGS.items():
        folder = OUT / "configs" / name
        folder.mkdir()
        (folder / "scheduler_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        cases = []
        for kind in kinds:
            # `default` builds the same class from the same file as one of the overrides, so
            # a few step counts are enough to check that it resolves to the right sampler.
            own = kind == "default" and CLASS_KIND.get(cfg["_class_name"]) in kinds
            for steps in [s for s in steps_list if s in (4, 14)] if own else steps_list:
                seed = zlib.crc32(f"{name}/{kind}/{steps}".encode()) % (2**31)
                cases.append(run_case(folder, kind, steps, seed))
        doc = {
            "config": name,
            "shape": list(SHAPE),
            "diffusers": diffusers.__version__,
            "torch": torch.__version__.split("+")[0],
            "cases": cases,
        }
        (OUT / "refs" / f"{name}.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        n_err = sum(1 for c in cases if "error" in c)
        print(f"{name}: {len(cases)} cases ({n_err} refused by diffusers)")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
