#!/usr/bin/env python3
"""Tiny random-weight TAESD models (diffusers' `AutoencoderTiny`) and diffusers' outputs on
them, for tests/taesd.rs.

    nice -n 19 /tmp/fxv/bin/python tools/make_taesd_fixtures.py   (versions: tools/requirements-fixtures.txt)

Writes into tests/fixtures/taesd/:
- `taesd-tiny/` and `taesdxl-tiny/`: diffusers folders (`config.json` +
  `diffusion_pytorch_model.safetensors`) as the Hub repos madebyollin/taesd and
  madebyollin/taesdxl hold them, with the real block structure ((1, 3, 3, 3) encoder stages,
  (3, 3, 3, 1) decoder stages, ReLU, latent_magnitude 3, latent_shift 0.5) but narrow layers
  (12 channels in the encoder, 16 in the decoder, where the real ones have 64). Beside them the
  same weights in madebyollin's own single-file layout (`taesd_decoder.safetensors`,
  `taesd_encoder.safetensors`, or `taesdxl_*`), as those repos also ship them: the decoder's
  `nn.Sequential` there starts with its clamp, so every decoder index is one higher.
- `refs.safetensors`: the inputs and diffusers' outputs, float32:
  `latents.a` [1, 4, 8, 12] (N(0, 2²)) and `latents.b` [1, 4, 5, 9] (N(0, 4²): well into the
  decoder's tanh clamp), and for each model M `M.decoded.a` / `M.decoded.b` =
  `AutoencoderTiny.decode(latents).sample` ([-1, 1]-ish pictures, unclamped), `M.encoded.square`
  / `M.encoded.wide` = `AutoencoderTiny.encode(picture).latents` for the two pictures of
  tests/fixtures/vae_encoder (read through diffusers' `VaeImageProcessor`, x / 255 · 2 − 1).
- `full_size_layout.json`: the default (real, 2.4M-parameter) `AutoencoderTiny`'s config as
  `save_pretrained` writes it and every tensor's name and shape, no weights; the Rust test makes
  random weights of that layout and loads them through the loader.
- `pipeline/`: diffusers' pipelines with the TAESD as their VAE (`pipe.vae = AutoencoderTiny`),
  as diffusers documents it: sd1-tiny + taesd-tiny and sdxl-tiny + taesdxl-tiny from the fixed
  latents of tests/fixtures/latents/, 8-bit PNGs and `cases.json`. Lantern's "Draft decode"
  must give these pictures.

Random-init TAESDs decode to a flat grey; the weights are redrawn (He-scaled, the residual
branch's last conv smaller) and the decoder's output conv is rescaled so pictures have
contrast, as tools/make_fixtures.py does for its VAEs. Everything is seeded: a second run
writes identical files.
"""

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderTiny, StableDiffusionPipeline, StableDiffusionXLPipeline
from diffusers.image_processor import VaeImageProcessor
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
OUT = FIX / "taesd"

# folder name → (seed, single-file prefix)
MODELS = {"taesd-tiny": (11, "taesd"), "taesdxl-tiny": (12, "taesdxl")}
PICTURES = ["square", "wide"]


def tiny_taesd(seed):
    torch.manual_seed(seed)
    model = AutoencoderTiny(
        encoder_block_out_channels=(12, 12, 12, 12),
        decoder_block_out_channels=(16, 16, 16, 16),
    ).eval()
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                # The last conv of each residual branch smaller, so twelve blocks in a row
                # neither die out nor blow up.
                gain = 0.6 if ".conv.4." in name else math.sqrt(2.0)
                p.copy_(torch.randn(p.shape, generator=g) * gain / math.sqrt(fan_in))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        last = model.decoder.layers[-1]
        probe = torch.randn((1, 4, 8, 8), generator=g) * 2.0
        out = model.decode(probe).sample
        last.weight.mul_(0.3 / out.std().item())
        out = model.decode(probe).sample
        last.bias.sub_(out.mean(dim=(0, 2, 3)) / 2)
    return model


# madebyollin's layout, written here from its published structure (taesd.py): the encoder's
# `nn.Sequential` is diffusers' `encoder.layers`; the decoder's starts with the clamp module.
class Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1),
        )
        self.skip = nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x):
        return self.fuse(self.conv(x) + self.skip(x))


def original_encoder(ch, latent=4):
    layers = [nn.Conv2d(3, ch, 3, padding=1), Block(ch)]
    for _ in range(3):
        layers += [nn.Conv2d(ch, ch, 3, padding=1, stride=2, bias=False), Block(ch), Block(ch), Block(ch)]
    layers.append(nn.Conv2d(ch, latent, 3, padding=1))
    return nn.Sequential(*layers)


def original_decoder(ch, latent=4):
    layers = [Clamp(), nn.Conv2d(latent, ch, 3, padding=1), nn.ReLU()]
    for _ in range(3):
        layers += [Block(ch), Block(ch), Block(ch), nn.Upsample(scale_factor=2), nn.Conv2d(ch, ch, 3, padding=1, bias=False)]
    layers += [Block(ch), nn.Conv2d(ch, 3, 3, padding=1)]
    return nn.Sequential(*layers)


def single_file_state(model, part):
    """diffusers' `encoder.layers.N.*` → `N.*`; `decoder.layers.N.*` → `N+1.*`."""
    shift = 1 if part == "decoder" else 0
    out = {}
    for name, t in model.state_dict().items():
        rest = name.removeprefix(f"{part}.layers.")
        if rest == name:
            continue
        index, tail = rest.split(".", 1)
        out[f"{int(index) + shift}.{tail}"] = t.contiguous()
    return out


def clean_folder(folder: Path):
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def pictures():
    processor = VaeImageProcessor(vae_scale_factor=8)
    out = {}
    for name in PICTURES:
        pil = Image.open(FIX / "vae_encoder" / f"{name}.png").convert("RGB")
        tensor = processor.preprocess(pil)
        plain = torch.from_numpy(np.asarray(pil).astype(np.float32) / 255.0 * 2.0 - 1.0).permute(2, 0, 1)[None]
        assert torch.equal(tensor, plain), "preprocess is not x / 255 · 2 − 1"
        out[name] = tensor
    return out


def full_size_layout():
    model = AutoencoderTiny()
    folder = OUT / "_full_size_tmp"
    clean_folder(folder)
    model.save_pretrained(folder, safe_serialization=True)
    config = json.loads((folder / "config.json").read_text())
    shutil.rmtree(folder)
    tensors = {name: list(t.shape) for name, t in model.state_dict().items()}
    params = sum(t.numel() for t in model.state_dict().values())
    write_json(OUT / "full_size_layout.json", {"config": config, "parameters": params, "tensors": tensors})
    print(f"full-size layout: {len(tensors)} tensors, {params} parameters")


def write_json(path: Path, obj):
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def pipeline_refs(models):
    """diffusers' txt2img with the TAESD as the pipeline's VAE, from fixed latents."""
    out_dir = OUT / "pipeline"
    clean_folder(out_dir)
    cases = [
        # (file, base fixture, pipeline, load kwargs, taesd, h, w, guidance, prompt, negative)
        ("sd1-sq-g7.png", "sd1-tiny", StableDiffusionPipeline, dict(safety_checker=None), "taesd-tiny",
         64, 64, 7.5, "a lighthouse at dusk, oil painting", "blurry, low quality"),
        ("sdxl-wide-g5.png", "sdxl-tiny", StableDiffusionXLPipeline, dict(variant="fp16"), "taesdxl-tiny",
         40, 72, 5.0, "a city of glass towers", None),
    ]
    records = []
    for file, base, cls, kwargs, taesd, h, w, g, prompt, neg in cases:
        pipe = cls.from_pretrained(FIX / base, torch_dtype=torch.float32, vae=models[taesd], **kwargs)
        pipe.set_progress_bar_config(disable=True)
        latents = load_file(FIX / "latents" / f"{h}x{w}.safetensors")["latents"]
        with torch.no_grad():
            image = pipe(
                prompt=prompt,
                negative_prompt=neg,
                num_inference_steps=6,
                guidance_scale=g,
                height=h,
                width=w,
                latents=latents.clone(),
                output_type="np",
            ).images[0]
        pixels = (image * 255).round().astype("uint8")
        Image.fromarray(pixels).save(out_dir / file, optimize=False)
        std = float(pixels.astype(np.float32).std())
        records.append(
            dict(
                file=file,
                model=base,
                taesd=taesd,
                scheduler="default",
                height=h,
                width=w,
                guidance=g,
                prompt=prompt,
                negative_prompt=neg,
                steps=6,
                latents=f"latents/{h}x{w}.safetensors",
                pixel_std=round(std, 2),
            )
        )
        print(f"pipeline {file}: std {std:.2f}")
    write_json(out_dir / "cases.json", {"cases": records})


def main():
    import diffusers

    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}")
    OUT.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(4242)
    refs = {
        "latents.a": torch.randn((1, 4, 8, 12), generator=g) * 2.0,
        "latents.b": torch.randn((1, 4, 5, 9), generator=g) * 4.0,
    }
    images = pictures()
    models = {}
    for folder_name, (seed, prefix) in MODELS.items():
        model = tiny_taesd(seed)
        models[folder_name] = model
        folder = OUT / folder_name
        clean_folder(folder)
        model.save_pretrained(folder, safe_serialization=True)
        reloaded = AutoencoderTiny.from_pretrained(folder).eval()
        with torch.no_grad():
            for key in ["a", "b"]:
                decoded = reloaded.decode(refs[f"latents.{key}"]).sample
                refs[f"{folder_name}.decoded.{key}"] = decoded.contiguous()
                print(f"{folder_name} decoded.{key}: {tuple(decoded.shape)} std {decoded.std():.3f}")
            for name, image in images.items():
                encoded = reloaded.encode(image).latents
                refs[f"{folder_name}.encoded.{name}"] = encoded.contiguous()
                print(f"{folder_name} encoded.{name}: {tuple(encoded.shape)} std {encoded.std():.3f}")

            # The single-file layout, proven by loading it strictly into madebyollin's structure
            # and getting diffusers' numbers back.
            enc_state = single_file_state(reloaded, "encoder")
            dec_state = single_file_state(reloaded, "decoder")
            enc = original_encoder(12)
            enc.load_state_dict(enc_state, strict=True)
            dec = original_decoder(16)
            dec.load_state_dict(dec_state, strict=True)
            for key in ["a", "b"]:
                theirs = dec(refs[f"latents.{key}"]) * 2 - 1
                assert torch.allclose(theirs, refs[f"{folder_name}.decoded.{key}"], atol=1e-5)
            for name, image in images.items():
                theirs = enc((image + 1) / 2)
                assert torch.allclose(theirs, refs[f"{folder_name}.encoded.{name}"], atol=1e-5)
        save_file(enc_state, folder / f"{prefix}_encoder.safetensors", metadata={"format": "pt"})
        save_file(dec_state, folder / f"{prefix}_decoder.safetensors", metadata={"format": "pt"})
        models[folder_name] = reloaded
    save_file({k: v.contiguous() for k, v in refs.items()}, OUT / "refs.safetensors", metadata={"format": "pt"})
    full_size_layout()
    pipeline_refs(models)


if __name__ == "__main__":
    sys.exit(main())
