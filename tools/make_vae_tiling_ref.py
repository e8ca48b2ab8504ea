#!/usr/bin/env python3
"""diffusers' own tiled VAE decode on the SD 1.x fixture, for tests/vae_tiling.rs.

    /opt/fixenv/bin/python tools/make_vae_tiling_ref.py     (versions: tools/requirements-fixtures.txt)

Writes tests/fixtures/reference/vae_tiled/decode.safetensors with `latents` [1, 4, 40, 28]
(seeded) and `tiled` [1, 3, 320, 224]: `AutoencoderKL.decode` with tiling on, 16-latent tiles
(128 pixels) and diffusers' default overlap factor of 0.25, so three tile rows by two columns,
the last ones partial. Lantern's `VaeDecoder::decode_tiled(z, 16, 4)` must give the same image. Also
`encode.safetensors`: that image (clamped to [-1, 1]) as `picture`, and diffusers' tiled
`AutoencoderKL.encode` of it (128-pixel tiles, a quarter overlap) as `mean` and `logvar`, which
`VaeEncoder::encode_tiled(x, 128, 32)` must give.
A second run writes identical bytes.
"""

from pathlib import Path

import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"


def main():
    torch.manual_seed(0)
    vae = AutoencoderKL.from_pretrained(FIX / "sd1-tiny" / "vae").eval()
    vae.enable_tiling()
    vae.tile_latent_min_size = 16
    vae.tile_sample_min_size = 128
    vae.tile_overlap_factor = 0.25
    g = torch.Generator().manual_seed(4242)
    latents = torch.randn((1, 4, 40, 28), generator=g, dtype=torch.float32)
    with torch.no_grad():
        tiled = vae.decode(latents).sample
    out = FIX / "reference" / "vae_tiled"
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {"latents": latents.contiguous(), "tiled": tiled.contiguous()},
        out / "decode.safetensors",
        metadata={"format": "pt"},
    )
    print(f"wrote {out / 'decode.safetensors'}: {tuple(tiled.shape)}")

    # The encoder: a 320×224 picture (from the decode above, so it has structure) in 128-pixel
    # tiles with a quarter overlap, diffusers' `_tiled_encode`; its posterior's mean and logvar.
    vae.tile_sample_min_size = 128
    vae.tile_latent_min_size = 16
    picture = tiled.clamp(-1, 1)
    with torch.no_grad():
        dist = vae.encode(picture).latent_dist
    save_file(
        {"picture": picture.contiguous(), "mean": dist.mean.contiguous(), "logvar": dist.logvar.contiguous()},
        out / "encode.safetensors",
        metadata={"format": "pt"},
    )
    print(f"wrote {out / 'encode.safetensors'}: {tuple(dist.mean.shape)}")


if __name__ == "__main__":
    main()
