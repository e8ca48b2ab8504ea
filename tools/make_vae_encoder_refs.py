#!/usr/bin/env python3
"""diffusers' `AutoencoderKL.encode` on the tiny fixtures' VAEs, for tests/vae_encoder.rs.

    python tools/make_vae_encoder_refs.py     (versions: tools/requirements-fixtures.txt)

Writes into tests/fixtures/vae_encoder/:
- `square.png` (64×64) and `wide.png` (72 wide, 48 high): RGB pictures drawn from a formula
  (no randomness), so a second run writes identical bytes;
- `<model>.safetensors` for sd1-tiny, sd2-tiny and sdxl-tiny, with for each picture NAME
  `NAME.mean` = `latent_dist.mean * scaling_factor` and `NAME.logvar` = `latent_dist.logvar`
  (already clamped to [-30, 20] by diffusers), [1, 4, H/8, W/8] float32.

Each picture is read back from its PNG and made into a tensor by diffusers'
`VaeImageProcessor.preprocess` (x / 255 · 2 − 1; the sizes are multiples of 8, so no resize),
checked against the plain formula. sdxl-tiny's VAE is stored as the fp16 variant only; it is
loaded in float32, as diffusers runs a `force_upcast` VAE. The SD VAEs have no shift_factor
nor latents_mean/std, so the scaling is the plain product.
"""

from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from diffusers.image_processor import VaeImageProcessor
from PIL import Image
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
OUT = FIX / "vae_encoder"

# name → (width, height)
PICTURES = {"square": (64, 64), "wide": (72, 48)}
MODELS = ["sd1-tiny", "sd2-tiny", "sdxl-tiny"]


def draw(width, height):
    """Smooth gradients, a sine ripple and a hard-edged disc: something with structure."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255.0 * x / (width - 1)
    g = 127.5 + 127.5 * np.sin(x / 5.0 + y / 7.0)
    b = 255.0 * y / (height - 1)
    disc = (x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (min(width, height) * 0.25) ** 2
    r = np.where(disc, 240.0, r)
    g = np.where(disc, 30.0, g)
    b = np.where(disc, 60.0, b)
    rgb = np.stack([r, g, b], axis=-1)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    processor = VaeImageProcessor(vae_scale_factor=8)
    images = {}
    for name, (w, h) in PICTURES.items():
        path = OUT / f"{name}.png"
        Image.fromarray(draw(w, h), mode="RGB").save(path, optimize=True)
        pil = Image.open(path).convert("RGB")
        assert pil.size == (w, h)
        tensor = processor.preprocess(pil)
        plain = torch.from_numpy(np.asarray(pil).astype(np.float32) / 255.0 * 2.0 - 1.0)
        plain = plain.permute(2, 0, 1).unsqueeze(0)
        assert tensor.shape == (1, 3, h, w), tensor.shape
        assert torch.equal(tensor, plain), "preprocess is not x / 255 · 2 − 1"
        images[name] = tensor

    for model in MODELS:
        vae_dir = FIX / model / "vae"
        variant = None if any(vae_dir.glob("diffusion_pytorch_model.safetensors")) else "fp16"
        vae = AutoencoderKL.from_pretrained(vae_dir, variant=variant, torch_dtype=torch.float32).eval()
        sf = vae.config.scaling_factor
        assert vae.config.shift_factor is None and vae.config.latents_mean is None
        tensors = {}
        with torch.no_grad():
            for name, image in images.items():
                dist = vae.encode(image).latent_dist
                tensors[f"{name}.mean"] = (dist.mean * sf).contiguous()
                tensors[f"{name}.logvar"] = dist.logvar.contiguous()
        out = OUT / f"{model}.safetensors"
        save_file(tensors, out, metadata={"format": "pt"})
        shapes = {k: tuple(v.shape) for k, v in tensors.items()}
        print(f"wrote {out.relative_to(ROOT)} (variant {variant}, scaling {sf}): {shapes}")


if __name__ == "__main__":
    main()
