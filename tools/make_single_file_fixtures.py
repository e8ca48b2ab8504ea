#!/usr/bin/env python3
"""Write the tiny fixture pipelines as single-file checkpoints in the original LDM/CompVis
layout (what civitai and A1111 users have), and render diffusers' own pictures from them.

The converter below is ours, written from the published key layout of the original
repositories (CompVis/stable-diffusion's `ldm` modules, Stability's generative-models for SDXL,
OpenCLIP's text tower); it maps diffusers names back to LDM names. diffusers' `from_single_file`
then reads those files with its own converter, so the references check our loader against an
independent reading of the same bytes.

Outputs (all under tests/fixtures/single-file/):
  sd1/sd1-tiny.safetensors     fp32, HF CLIP text encoder, plus LDM's schedule buffers and an
                               int64 position_ids tensor as real SD 1.x files carry them
  sd2/sd2-tiny.safetensors     bf16, OpenCLIP text tower with the fused in_proj, the unused
                               last resblock and text_projection real SD 2.x files carry, and
                               EMA copies of the UNet (`model_ema.*`, noise: using them breaks
                               parity) as un-pruned files carry them
  sdxl/sdxl-tiny.safetensors   fp16, conditioner.embedders.0 (HF CLIP) + .1 (OpenCLIP)
  <family>/reference/*.png + cases.json: diffusers' pictures from the single file with
                               `from_single_file(file, config=<fixture folder>)`, fixed latents.

Run: /work/main/.bench-cache/venv/bin/python tools/make_single_file_fixtures.py
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
OUT = FIX / "single-file"

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

STEPS = 6
# (name, height, width, guidance, prompt, negative prompt or None); latents from make_fixtures.py
CASES = [
    ("sq-g7", 64, 64, 7.5, "a lighthouse at dusk, oil painting", "blurry, low quality"),
    ("wide-g5", 40, 72, 5.0, "a city of glass towers", None),
]


# ----------------------------------------------------------------------------------------
# diffusers → LDM names


def unet_to_ldm(sd, layers_per_block, up_has_attention):
    """UNet2DConditionModel names → `model.diffusion_model.*` (openaimodel.UNetModel)."""
    lpb = layers_per_block
    out = {}
    resnet = [
        ("norm1", "in_layers.0"),
        ("conv1", "in_layers.2"),
        ("time_emb_proj", "emb_layers.1"),
        ("norm2", "out_layers.0"),
        ("conv2", "out_layers.3"),
        ("conv_shortcut", "skip_connection"),
    ]

    def res(rest):
        for a, b in resnet:
            if rest.startswith(a + "."):
                return b + rest[len(a) :]
        raise KeyError(rest)

    fixed = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "add_embedding.linear_1": "label_emb.0.0",
        "add_embedding.linear_2": "label_emb.0.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    for k, v in sd.items():
        name = None
        for a, b in fixed.items():
            if k.startswith(a + "."):
                name = b + k[len(a) :]
        if name is None:
            m = re.match(r"down_blocks\.(\d+)\.(resnets|attentions|downsamplers)\.(\d+)\.(.*)", k)
            if m:
                b, kind, l, rest = int(m[1]), m[2], int(m[3]), m[4]
                if kind == "resnets":
                    name = f"input_blocks.{1 + b * (lpb + 1) + l}.0.{res(rest)}"
                elif kind == "attentions":
                    name = f"input_blocks.{1 + b * (lpb + 1) + l}.1.{rest}"
                else:
                    assert rest.startswith("conv.")
                    name = f"input_blocks.{(b + 1) * (lpb + 1)}.0.op.{rest[5:]}"
        if name is None:
            m = re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", k)
            if m:
                kind, l, rest = m[1], int(m[2]), m[3]
                if kind == "resnets":
                    name = f"middle_block.{2 * l}.{res(rest)}"
                else:
                    name = f"middle_block.1.{rest}"
        if name is None:
            m = re.match(r"up_blocks\.(\d+)\.(resnets|attentions|upsamplers)\.(\d+)\.(.*)", k)
            if m:
                b, kind, l, rest = int(m[1]), m[2], int(m[3]), m[4]
                if kind == "resnets":
                    name = f"output_blocks.{b * (lpb + 1) + l}.0.{res(rest)}"
                elif kind == "attentions":
                    name = f"output_blocks.{b * (lpb + 1) + l}.1.{rest}"
                else:
                    slot = 2 if up_has_attention[b] else 1
                    name = f"output_blocks.{b * (lpb + 1) + lpb}.{slot}.{rest}"
        if name is None:
            raise KeyError(k)
        out["model.diffusion_model." + name] = v
    return out


def vae_to_ldm(sd, prefix="first_stage_model."):
    """AutoencoderKL names → `first_stage_model.*` (ldm AutoencoderKL)."""
    n_up = 1 + max(int(m[1]) for k in sd if (m := re.match(r"decoder\.up_blocks\.(\d+)\.", k)))
    out = {}

    def res(rest):
        return rest.replace("conv_shortcut.", "nin_shortcut.")

    attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    for k, v in sd.items():
        name = None
        m = re.match(r"(encoder|decoder)\.(.*)", k)
        if not m:
            name = k  # quant_conv, post_quant_conv
        else:
            part, rest = m[1], m[2]
            if rest.startswith("conv_norm_out."):
                name = f"{part}.norm_out.{rest[len('conv_norm_out.'):]}"
            elif rest.startswith(("conv_in.", "conv_out.")):
                name = k
            elif mm := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", rest):
                name = f"{part}.mid.block_{int(mm[1]) + 1}.{res(mm[2])}"
            elif mm := re.match(r"mid_block\.attentions\.0\.(.*)", rest):
                sub = mm[1]
                for a, b in attn.items():
                    if sub.startswith(a + "."):
                        sub = b + sub[len(a) :]
                        break
                else:
                    raise KeyError(k)
                if sub.endswith(".weight") and v.ndim == 2 and not sub.startswith("norm"):
                    v = v[:, :, None, None]
                name = f"{part}.mid.attn_1.{sub}"
            elif mm := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", rest):
                name = f"{part}.down.{mm[1]}.block.{mm[2]}.{res(mm[3])}"
            elif mm := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", rest):
                name = f"{part}.down.{mm[1]}.downsample.conv.{mm[2]}"
            elif mm := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", rest):
                name = f"{part}.up.{n_up - 1 - int(mm[1])}.block.{mm[2]}.{res(mm[3])}"
            elif mm := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", rest):
                name = f"{part}.up.{n_up - 1 - int(mm[1])}.upsample.conv.{mm[2]}"
        if name is None:
            raise KeyError(k)
        out[prefix + name] = v
    return out


def with_text_model(sd):
    return {(k if k.startswith("text_model.") or k.startswith("text_projection") else "text_model." + k): v for k, v in sd.items()}


def clip_to_ldm(sd, prefix):
    """transformers CLIPTextModel → `<prefix>transformer.text_model.*` (FrozenCLIPEmbedder)."""
    return {prefix + "transformer." + k: v for k, v in with_text_model(sd).items() if not k.startswith("text_projection")}


def open_clip_to_ldm(sd, prefix, extra_layer_seed=None):
    """transformers CLIP text model → OpenCLIP's text tower (`<prefix>model.*`)."""
    sd = with_text_model(sd)
    out = {}
    layers = sorted({int(m[1]) for k in sd if (m := re.match(r"text_model\.encoder\.layers\.(\d+)\.", k))})
    t = "text_model."
    out["token_embedding.weight"] = sd[t + "embeddings.token_embedding.weight"]
    out["positional_embedding"] = sd[t + "embeddings.position_embedding.weight"]
    out["ln_final.weight"] = sd[t + "final_layer_norm.weight"]
    out["ln_final.bias"] = sd[t + "final_layer_norm.bias"]
    for i in layers:
        s = f"{t}encoder.layers.{i}."
        o = f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[o + f"attn.in_proj_{kind}"] = torch.cat(
                [sd[s + f"self_attn.{p}_proj.{kind}"] for p in ("q", "k", "v")], 0
            )
            out[o + f"attn.out_proj.{kind}"] = sd[s + f"self_attn.out_proj.{kind}"]
            out[o + f"ln_1.{kind}"] = sd[s + f"layer_norm1.{kind}"]
            out[o + f"ln_2.{kind}"] = sd[s + f"layer_norm2.{kind}"]
            out[o + f"mlp.c_fc.{kind}"] = sd[s + f"mlp.fc1.{kind}"]
            out[o + f"mlp.c_proj.{kind}"] = sd[s + f"mlp.fc2.{kind}"]
    d = out["token_embedding.weight"].shape[1]
    if "text_projection.weight" in sd:
        out["text_projection"] = sd["text_projection.weight"].T.contiguous()
    else:
        # SD 2.x files carry the projection although SD 2.x never uses it.
        g = torch.Generator().manual_seed(77)
        out["text_projection"] = torch.randn((d, d), generator=g)
    if extra_layer_seed is not None:
        # SD 2.x files hold all 24 resblocks of OpenCLIP ViT-H; SD 2.x conditions on the
        # penultimate one, so the last is never used (diffusers ignores resblocks.23).
        g = torch.Generator().manual_seed(extra_layer_seed)
        last = len(layers)
        src = f"transformer.resblocks.{last - 1}."
        for k in [k for k in out if k.startswith(src)]:
            out[f"transformer.resblocks.{last}." + k[len(src) :]] = torch.randn(out[k].shape, generator=g)
    out["logit_scale"] = torch.tensor(4.6052)
    return {prefix + "model." + k: v for k, v in out.items()}


def read(folder, component, variant=None):
    base = "model" if component.startswith("text_encoder") else "diffusion_pytorch_model"
    name = f"{base}.{variant}.safetensors" if variant else f"{base}.safetensors"
    return {k: v.float() for k, v in load_file(folder / component / name).items()}


def config(folder, component):
    return json.loads((folder / component / "config.json").read_text())


def unet_ldm(folder, variant=None):
    c = config(folder, "unet")
    up_attn = [t.startswith("CrossAttn") for t in c["up_block_types"]]
    lpb = c["layers_per_block"]
    assert isinstance(lpb, int)
    return unet_to_ldm(read(folder, "unet", variant), lpb, up_attn)


def save(path, sd, dtype, metadata=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in sd.items()}
    save_file(dict(sorted(out.items())), path, metadata=metadata or {"format": "pt"})
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"wrote {shown} ({path.stat().st_size / 1e6:.1f} MB)", flush=True)


def make_sd1():
    f = FIX / "sd1-tiny"
    sd = {}
    sd.update(unet_ldm(f))
    sd.update(vae_to_ldm(read(f, "vae")))
    sd.update(clip_to_ldm(read(f, "text_encoder"), "cond_stage_model."))
    sd["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77, dtype=torch.int64)[None]
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    sd["alphas_cumprod"] = torch.cumprod(1 - betas, 0).float()
    path = OUT / "sd1" / "sd1-tiny.safetensors"
    save(path, sd, torch.float32)
    return path


def make_sd1_inpaint():
    """sd1-inpaint-tiny (9-channel UNet) as an inpainting checkpoint, UNet and VAE only (its text
    encoder is sd1-tiny's, which the test lends it, as Lantern lends an installed model's)."""
    f = FIX / "sd1-inpaint-tiny"
    sd = {}
    sd.update(unet_ldm(f))
    sd.update(vae_to_ldm(read(f, "vae")))
    path = OUT / "sd1" / "sd1-inpaint-tiny.safetensors"
    save(path, sd, torch.float32)
    return path


def make_sdxl_refiner():
    """sdxl-refiner-tiny as a refiner checkpoint: OpenCLIP bigG alone in `conditioner.embedders.0`,
    the 5-number size conditioning (aesthetic score) in label_emb; fp16 as the refiner ships."""
    f = FIX / "sdxl-refiner-tiny"
    sd = {}
    sd.update(unet_ldm(f, "fp16"))
    sd.update(vae_to_ldm(read(f, "vae", "fp16")))
    sd.update(open_clip_to_ldm(read(f, "text_encoder_2", "fp16"), "conditioner.embedders.0."))
    path = OUT / "sdxl-refiner" / "sdxl-refiner-tiny.safetensors"
    meta = {"format": "pt", "modelspec.architecture": "stable-diffusion-xl-v1-refiner", "modelspec.title": "tiny"}
    save(path, sd, torch.float16, meta)
    return path


def make_sd2():
    f = FIX / "sd2-tiny"
    sd = {}
    unet = unet_ldm(f)
    sd.update(unet)
    g = torch.Generator().manual_seed(99)
    for k, v in unet.items():
        # LitEMA's flattened names: dots removed after `model.`.
        sd["model_ema." + k[len("model.") :].replace(".", "")] = torch.randn(v.shape, generator=g)
    sd["model_ema.num_updates"] = torch.tensor(1000, dtype=torch.int32)
    sd.update(vae_to_ldm(read(f, "vae")))
    sd.update(open_clip_to_ldm(read(f, "text_encoder"), "cond_stage_model.", extra_layer_seed=5))
    path = OUT / "sd2" / "sd2-tiny.safetensors"
    save(path, sd, torch.bfloat16)
    return path


def make_sdxl():
    f = FIX / "sdxl-tiny"
    sd = {}
    sd.update(unet_ldm(f, "fp16"))
    sd.update(vae_to_ldm(read(f, "vae", "fp16")))
    sd.update(clip_to_ldm(read(f, "text_encoder", "fp16"), "conditioner.embedders.0."))
    sd.update(open_clip_to_ldm(read(f, "text_encoder_2", "fp16"), "conditioner.embedders.1."))
    path = OUT / "sdxl" / "sdxl-tiny.safetensors"
    meta = {"format": "pt", "modelspec.architecture": "stable-diffusion-xl-v1-base", "modelspec.title": "tiny"}
    save(path, sd, torch.float16, meta)
    return path


def latents_for(h, w):
    p = FIX / "latents" / f"{h}x{w}.safetensors"
    return load_file(p)["latents"], p


def render(family, path, cls):
    folder = FIX / f"{family}-tiny"
    extra = {}
    if family == "sdxl":
        # diffusers picks SDXL's second encoder by the width of embedders.0 first; the tiny
        # encoders are equally wide, so it would take CLIP-L for both. Give it the OpenCLIP
        # tower alone, converted by diffusers' own single-file code from the same file.
        from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm
        from transformers import CLIPTextModelWithProjection

        ckpt = {k: v for k, v in load_file(path).items() if not k.startswith("conditioner.embedders.0.")}
        extra["text_encoder_2"] = create_diffusers_clip_model_from_ldm(
            CLIPTextModelWithProjection, ckpt, config=str(folder), subfolder="text_encoder_2", torch_dtype=torch.float32
        )
    pipe = cls.from_single_file(
        str(path), config=str(folder), torch_dtype=torch.float32, local_files_only=True, **extra
    )
    pipe.set_progress_bar_config(disable=True)
    out_dir = OUT / family / "reference"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):
        old.unlink()
    records = []
    for name, h, w, g, prompt, neg in CASES:
        lat, lat_path = latents_for(h, w)
        with torch.no_grad():
            img = pipe(
                prompt=prompt,
                negative_prompt=neg,
                num_inference_steps=STEPS,
                guidance_scale=g,
                height=h,
                width=w,
                latents=lat.clone(),
                output_type="np",
            ).images[0]
        pixels = (img * 255).round().astype("uint8")
        file = f"default-{name}.png"
        Image.fromarray(pixels).save(out_dir / file, optimize=False)
        std = float(pixels.astype(np.float32).std())
        # The same picture from the diffusers folder: how far the single file's precision moves it.
        records.append(
            dict(
                file=file,
                scheduler="default",
                height=h,
                width=w,
                guidance=g,
                prompt=prompt,
                negative_prompt=neg,
                steps=STEPS,
                latents=str(lat_path.relative_to(FIX)),
                pixel_std=round(std, 2),
            )
        )
        print(f"{family:5} {file:24} std={std:6.2f}", flush=True)
    (out_dir / "cases.json").write_text(
        json.dumps({"family": family, "model": str(path.relative_to(FIX)), "cases": records}, indent=2) + "\n"
    )


def main():
    families = sys.argv[1:] or ["sd1", "sd2", "sdxl", "sd1-inpaint", "sdxl-refiner"]
    makers = {
        "sd1": (make_sd1, StableDiffusionPipeline),
        "sd2": (make_sd2, StableDiffusionPipeline),
        "sdxl": (make_sdxl, StableDiffusionXLPipeline),
    }
    for fam in families:
        # Compared with the diffusers folders' own references (tests/single_file.rs).
        if fam == "sd1-inpaint":
            make_sd1_inpaint()
            continue
        if fam == "sdxl-refiner":
            make_sdxl_refiner()
            continue
        make, cls = makers[fam]
        render(fam, make(), cls)


if __name__ == "__main__":
    main()
