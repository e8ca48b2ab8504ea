#!/usr/bin/env python3
"""Write full-size, random-weight Stable Diffusion folders in the diffusers layout for the
benchmarks (never committed; default folder: .bench-cache/ in the repository).

    python3 tools/bench_weights.py [--out DIR] [--sdxl]

  DIR/sd15/        SD 1.5 architecture: UNet 860M, VAE 84M, CLIP ViT-L text encoder 123M (fp32)
  DIR/sdxl-unet/   (--sdxl) the SDXL base UNet alone (2.6B, fp32), for UNet-step timings

Weights come from PyTorch's default initialisation under a fixed seed, so Lantern and
diffusers run the very same numbers. Real prompts produce noise images from these, which is
all a speed benchmark needs.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

ROOT = Path(__file__).resolve().parent.parent

SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    attention_head_dim=8,
    cross_attention_dim=768,
)

SD15_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)

SDXL_UNET = dict(
    sample_size=128,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280),
    layers_per_block=2,
    attention_head_dim=[5, 10, 20],
    transformer_layers_per_block=[1, 2, 10],
    cross_attention_dim=2048,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)

SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}


def write_sd15(out: Path):
    if (out / "model_index.json").exists():
        print(f"{out}: already there")
        return
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(0)
    UNet2DConditionModel(**SD15_UNET).save_pretrained(tmp / "unet")
    torch.manual_seed(1)
    AutoencoderKL(**SD15_VAE).save_pretrained(tmp / "vae")
    torch.manual_seed(2)
    text_config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=768,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )
    CLIPTextModel(text_config).save_pretrained(tmp / "text_encoder")
    shutil.copytree(ROOT / "tests/fixtures/sd1-tiny/tokenizer", tmp / "tokenizer")
    (tmp / "scheduler").mkdir(parents=True)
    (tmp / "scheduler/scheduler_config.json").write_text(json.dumps(SD15_SCHEDULER, indent=2))
    index = json.loads((ROOT / "tests/fixtures/sd1-tiny/model_index.json").read_text())
    (tmp / "model_index.json").write_text(json.dumps(index, indent=2))
    tmp.rename(out)
    print(f"{out}: written")


def write_sdxl_unet(out: Path):
    if (out / "unet/config.json").exists():
        print(f"{out}: already there")
        return
    torch.manual_seed(3)
    UNet2DConditionModel(**SDXL_UNET).save_pretrained(out / "unet")
    print(f"{out}: written")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / ".bench-cache"))
    ap.add_argument("--sdxl", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_sd15(out / "sd15")
    if args.sdxl:
        write_sdxl_unet(out / "sdxl-unet")


if __name__ == "__main__":
    sys.exit(main())
