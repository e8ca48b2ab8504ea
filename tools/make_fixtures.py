#!/usr/bin/env python3
"""Build the tiny diffusers pipelines and reference outputs under tests/fixtures/.

Everything here is seeded, so running the script again gives byte-identical files.
Requirements (pinned so the references do not drift): see tools/requirements-fixtures.txt.

    python3 -m venv /tmp/fx && /tmp/fx/bin/pip install -r tools/requirements-fixtures.txt
    /tmp/fx/bin/python tools/make_fixtures.py

What it writes:
  tests/fixtures/sd1-tiny/   SD 1.x layout: epsilon, conv projection, quick_gelu CLIP, PNDM,
                             vocab.json + merges.txt tokenizer, `text_model.*` weight names
  tests/fixtures/sd2-tiny/   SD 2.x layout: v-prediction, linear projection, per-block head
                             counts, gelu CLIP, '!' padding, tokenizer.json only, DDIM
  tests/fixtures/sdxl-tiny/  SDXL layout: two text encoders, text_time conditioning,
                             transformer_layers_per_block, Euler, fp16 variant weights only
  tests/fixtures/reference/<family>/<case>.png    diffusers' images for fixed latents
  tests/fixtures/reference/<family>/cases.json    what each reference was made with
  tests/fixtures/latents/<h>x<w>.safetensors      the fixed latents ("latents", f32)
  tests/fixtures/tokenizer_cases.json             Hugging Face CLIPTokenizer ids
"""

import gzip
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import diffusers
import transformers
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
    UniPCMultistepScheduler,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

# The names `lantern generate --scheduler` takes, and how diffusers builds each one from the
# folder's own scheduler config (`from_config`, as a user of diffusers would switch samplers).
SCHEDULERS = {
    "default": None,
    "ddim": (DDIMScheduler, {}),
    "pndm": (PNDMScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "dpmpp-2m": (DPMSolverMultistepScheduler, {}),
    "dpmpp-2m-karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
    "unipc": (UniPCMultistepScheduler, {}),
    "lms": (LMSDiscreteScheduler, {}),
    "heun": (HeunDiscreteScheduler, {}),
}

STEPS = 6


# ----------------------------------------------------------------------------------------
# Tokenizer: the real CLIP BPE vocabulary, as open_clip ships it, written in both layouts
# the Hugging Face repos use.


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_vocab_and_merges():
    import open_clip

    path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def write_slow_tokenizer(folder: Path, pad_token: str):
    """vocab.json + merges.txt + tokenizer_config.json, as the SD 1.5 / SDXL hub repos hold."""
    vocab, merges = clip_vocab_and_merges()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    with open(folder / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "pad_token": pad_token,
        "unk_token": "<|endoftext|>",
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    config = dict(special, model_max_length=77, do_lower_case=True, tokenizer_class="CLIPTokenizer")
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def write_fast_tokenizer(folder: Path, pad_token: str):
    """What transformers 5 `save_pretrained` writes: tokenizer.json + tokenizer_config.json."""
    tmp = folder.parent / (folder.name + ".slow")
    write_slow_tokenizer(tmp, pad_token)
    tok = CLIPTokenizer.from_pretrained(tmp)
    shutil.rmtree(tmp)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(folder)
    # The chat template file and similar extras are not part of the layout we test.
    for extra in folder.iterdir():
        if extra.name not in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            extra.unlink()


# ----------------------------------------------------------------------------------------
# Models


def text_encoder(seed, *, hidden_act, projection=False, layers=3):
    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act=hidden_act,
        projection_dim=32,
        # Real SD checkpoints carry the legacy ids (eos 2): pooling then takes argmax(ids).
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )
    model = (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()
    # A fresh final LayerNorm is the identity (weight 1, bias 0), which leaves every token's
    # mean near 0; trained encoders' is far from it. A1111's emphasis divides by that mean, so
    # give it the spread a trained one has (from its own generator: the rest stays as it was).
    g = torch.Generator().manual_seed(seed + 500)
    ln = getattr(model, "text_model", model).final_layer_norm
    with torch.no_grad():
        ln.weight.copy_(0.5 + torch.rand(ln.weight.shape, generator=g))
        ln.bias.copy_(0.3 * torch.randn(ln.bias.shape, generator=g))
    return model


def save_text_encoder(model, folder: Path, *, prefix_text_model: bool, variant=None):
    """Save like transformers does; optionally rename weights to `text_model.*` as real repos do."""
    model.save_pretrained(folder)
    name = "model.safetensors"
    sd = load_file(folder / name)
    if prefix_text_model:
        sd = {(k if k.startswith("text_model.") or k == "text_projection.weight" else "text_model." + k): v for k, v in sd.items()}
    os.remove(folder / name)
    if variant == "fp16":
        sd = {k: v.to(torch.float16) for k, v in sd.items()}
        name = "model.fp16.safetensors"
    save_file(dict(sorted(sd.items())), folder / name, metadata={"format": "pt"})


def round_to_fp16(module):
    """Make the f32 module hold exactly what an fp16 checkpoint would give it."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(torch.float16).to(torch.float32))
    return module


def enliven_vae(vae, gain):
    """Random-init VAEs decode to a nearly flat grey; a larger output layer gives images with
    real contrast, so the pixel comparison has something to compare."""
    with torch.no_grad():
        vae.decoder.conv_out.weight.mul_(gain)
    return vae


def enliven_unet(unet):
    """Random-init UNets barely listen to the prompt or the timestep (a 5 % effect), which
    would let a wrong cross-attention or time embedding pass the pixel comparison. Larger
    cross-attention outputs, time embeddings and output layer make both matter (20 % and
    more), as they do in trained models."""
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "attn2.to_out.0" in name:
                p.mul_(6)
            if name.startswith(("time_embedding.linear_2", "add_embedding.linear_2")):
                p.mul_(4)
            if name.startswith("conv_out"):
                p.mul_(2.5)
    return unet


def tiny_vae(seed, *, scaling_factor, force_upcast, gain):
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 32, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=64,
        scaling_factor=scaling_factor,
        force_upcast=force_upcast,
    ).eval()
    return enliven_vae(vae, gain)


def write_json(path: Path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def clean_folder(folder: Path):
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def sd1_unet(seed, in_channels=4):
    """The tiny SD 1-style UNet (in_channels 9: the inpainting layout), seeded."""
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 32, 48),
        layers_per_block=2,
        attention_head_dim=8,
        cross_attention_dim=32,
        norm_num_groups=16,
    ).eval()


def sdxl_unet(seed, in_channels=4, cross_attention_dim=64, time_ids=6, pooled=32):
    """The tiny SDXL-style UNet, seeded: 9 input channels for inpainting; the refiner's is
    conditioned on one encoder (cross_attention_dim 32) and 5 size numbers."""
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 32, 64),
        layers_per_block=1,
        attention_head_dim=[2, 4, 8],
        transformer_layers_per_block=[1, 1, 2],
        cross_attention_dim=cross_attention_dim,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=time_ids * 8 + pooled,
        norm_num_groups=32,
    ).eval()


def make_sd1(folder: Path):
    clean_folder(folder)
    enliven_unet(sd1_unet(1)).save_pretrained(folder / "unet")
    tiny_vae(2, scaling_factor=0.18215, force_upcast=True, gain=2.5).save_pretrained(folder / "vae")
    save_text_encoder(text_encoder(3, hidden_act="quick_gelu"), folder / "text_encoder", prefix_text_model=True)
    write_slow_tokenizer(folder / "tokenizer", "<|endoftext|>")
    # The SD 1.5 hub scheduler config, verbatim in content (no timestep_spacing field).
    write_json(
        folder / "scheduler" / "scheduler_config.json",
        {
            "_class_name": "PNDMScheduler",
            "_diffusers_version": "0.6.0",
            "beta_end": 0.012,
            "beta_schedule": "scaled_linear",
            "beta_start": 0.00085,
            "num_train_timesteps": 1000,
            "set_alpha_to_one": False,
            "skip_prk_steps": True,
            "steps_offset": 1,
            "trained_betas": None,
            "clip_sample": False,
        },
    )
    write_json(
        folder / "model_index.json",
        {
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": "0.6.0",
            "feature_extractor": [None, None],
            "safety_checker": [None, None],
            "requires_safety_checker": False,
            "scheduler": ["diffusers", "PNDMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )


def make_sd2(folder: Path):
    clean_folder(folder)
    torch.manual_seed(11)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(16, 32, 48),
        layers_per_block=1,
        attention_head_dim=[2, 4, 6],
        cross_attention_dim=32,
        use_linear_projection=True,
        upcast_attention=True,
        norm_num_groups=16,
    ).eval()
    enliven_unet(unet).save_pretrained(folder / "unet")
    tiny_vae(12, scaling_factor=0.18215, force_upcast=True, gain=2.5).save_pretrained(folder / "vae")
    save_text_encoder(text_encoder(13, hidden_act="gelu"), folder / "text_encoder", prefix_text_model=False)
    write_fast_tokenizer(folder / "tokenizer", "!")
    # The SD 2.1 hub scheduler config (768-v).
    write_json(
        folder / "scheduler" / "scheduler_config.json",
        {
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
        },
    )
    write_json(
        folder / "model_index.json",
        {
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": "0.8.0",
            "feature_extractor": [None, None],
            "safety_checker": [None, None],
            "requires_safety_checker": False,
            "scheduler": ["diffusers", "DDIMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )


def save_fp16_variant(model, folder: Path, weight_name="diffusion_pytorch_model"):
    """Only `*.fp16.safetensors` in the folder, like repos that ship the fp16 variant alone."""
    model.save_pretrained(folder, variant="fp16", safe_serialization=True)
    path = folder / f"{weight_name}.fp16.safetensors"
    sd = {k: v.to(torch.float16) for k, v in load_file(path).items()}
    save_file(dict(sorted(sd.items())), path, metadata={"format": "pt"})


def make_sdxl(folder: Path):
    clean_folder(folder)
    save_fp16_variant(enliven_unet(sdxl_unet(21)), folder / "unet")
    save_fp16_variant(
        tiny_vae(22, scaling_factor=0.13025, force_upcast=True, gain=2.5), folder / "vae"
    )
    save_text_encoder(text_encoder(23, hidden_act="quick_gelu"), folder / "text_encoder", prefix_text_model=True, variant="fp16")
    save_text_encoder(
        text_encoder(24, hidden_act="gelu", projection=True, layers=2),
        folder / "text_encoder_2",
        prefix_text_model=True,
        variant="fp16",
    )
    write_slow_tokenizer(folder / "tokenizer", "<|endoftext|>")
    write_slow_tokenizer(folder / "tokenizer_2", "!")
    # The SDXL base 1.0 hub scheduler config.
    write_json(
        folder / "scheduler" / "scheduler_config.json",
        {
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
        },
    )
    write_json(
        folder / "model_index.json",
        {
            "_class_name": "StableDiffusionXLPipeline",
            "_diffusers_version": "0.19.0.dev0",
            "force_zeros_for_empty_prompt": True,
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )


# ----------------------------------------------------------------------------------------
# References


def latents_for(h, w):
    path = FIX / "latents" / f"{h}x{w}.safetensors"
    g = torch.Generator().manual_seed(1000 + h * 7 + w)
    lat = torch.randn((1, 4, h // 8, w // 8), generator=g, dtype=torch.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"latents": lat.contiguous()}, path, metadata={"format": "pt"})
    return lat, path


# (name, height, width, guidance, prompt, negative prompt or None)
CASES = [
    ("sq-g1", 64, 64, 1.0, "a red fox in the snow", None),
    ("sq-g7", 64, 64, 7.5, "a lighthouse at dusk, oil painting", "blurry, low quality"),
    ("wide-g5", 40, 72, 5.0, "a city of glass towers", None),
]


def render(pipe, family, sched_name, case):
    name, h, w, g, prompt, neg = case
    base = dict(pipe.scheduler.config) if not hasattr(pipe, "_lantern_base") else pipe._lantern_base
    spec = SCHEDULERS[sched_name]
    if spec is None:
        pipe.scheduler = pipe._lantern_default.__class__.from_config(pipe._lantern_default.config)
    else:
        cls, extra = spec
        pipe.scheduler = cls.from_config(pipe._lantern_default.config, **extra)
    lat, lat_path = latents_for(h, w)
    kwargs = dict(
        prompt=prompt,
        negative_prompt=neg,
        num_inference_steps=STEPS,
        guidance_scale=g,
        height=h,
        width=w,
        latents=lat.clone(),
        output_type="np",
    )
    with torch.no_grad():
        out = pipe(**kwargs).images[0]
    pixels = (out * 255).round().astype("uint8")
    return pixels, lat_path


def make_references(family, folder, pipeline_cls, **load_kwargs):
    pipe = pipeline_cls.from_pretrained(folder, torch_dtype=torch.float32, **load_kwargs)
    pipe.set_progress_bar_config(disable=True)
    pipe._lantern_default = pipe.scheduler
    out_dir = FIX / "reference" / family
    clean_folder(out_dir)
    records = []
    for sched in SCHEDULERS:
        for case in CASES:
            pixels, lat_path = render(pipe, family, sched, case)
            name, h, w, g, prompt, neg = case
            file = f"{sched}-{name}.png"
            Image.fromarray(pixels).save(out_dir / file, optimize=False)
            std = float(pixels.astype(np.float32).std())
            records.append(
                dict(
                    file=file,
                    scheduler=sched,
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
            print(f"{family:5} {file:28} std={std:6.2f}", flush=True)
    write_json(out_dir / "cases.json", {"family": family, "model": str(folder.relative_to(FIX)), "cases": records})


# ----------------------------------------------------------------------------------------
# Tokenizer cases: ids from Hugging Face's CLIPTokenizer, as diffusers calls it.

TOKENIZER_PROMPTS = [
    "",
    "a photo of an astronaut riding a horse on mars",
    "A Photo Of An ASTRONAUT",
    "hello world!",
    "wow!!! really?!",
    "a!b!c",
    "🦊 a fox emoji 🔥🔥",
    "👩‍🚀 astronaut with ZWJ",
    "一只红色的狐狸在雪地里",
    "中文和English混合",
    "café naïve résumé Ångström",
    "cafe\u0301 decomposed accent",
    "line one\nline two\n\nline three",
    "   leading and    repeated   spaces   ",
    "tabs\tand\u00a0nbsp\u3000ideographic space",
    "punctuation: commas, periods. semi;colons — dashes – and \"quotes\" 'single'",
    "(masterpiece:1.2), [background], {braces}, <lora:foo:0.8>",
    "(word:1.2) ((double)) [[less]] (a cat:0.5)",
    "it's the cat's toy, they're here, we've been, i'm, you'll, he'd",
    "numbers 12345 3.14159 1e-5 2026-11-28",
    "<|startoftext|> literal special tokens <|endoftext|> in text",
    "UPPER <|ENDOFTEXT|> case special",
    "Ünïcödé ÇÀPS and ß and İstanbul",
    "emoji ❤️ with variation selector and 🏳️‍🌈 flag",
    "Привет мир, Ελληνικά, العربية, עברית, हिन्दी, 日本語のテキスト, 한국어",
    "url https://example.com/path?q=1&x=y#frag",
    "snake_case and kebab-case and CamelCase",
    "$%^&*()_+=~`|\\/<>",
    "a " * 100,
    "highly detailed, " * 30,
    "word " * 74 + "end",
    "word " * 75 + "end",
    "word " * 76 + "end",
    "x" * 500,
    "🦊" * 50,
    "zero\u200bwidth\u200bspace",
    "control\u0007char and \u0000 null",
    "ﬁ ligature and ＦＵＬＬＷＩＤＴＨ",
    # Added with the Rust tokenizer: cases where a plausible reimplementation drifts from HF.
    "ΟΔΟΣ ΣΑΣ final sigma",  # per-character lowercase: no final-sigma rule
    "İstanbul \u212a kelvin \u2126 ohm ǅ titlecase ẞ sharp",
    "nel\u0085line line\u2028sep para\u2029sep \u1680ogham narrow\u202fnbsp math\u205fspace",
    "bom\ufeffword soft\u00adhyphen word\u2060joiner \u180emongolian vowel sep",
    "\t\n\r\x0b\x0c  ",
    "<|endoftext|>\u0338 not greater and a <\u0338 b",
    "<|startoftext|><|endoftext|><|endoftext|>!",
    "<|endoftext| partial <<|endoftext|>> <|endoftext|>",
    "don't WON'T I'M YOU'LL it\u2019s ''s '''' 's's they'Re",
    "digits 0123456789 \u0661\u0662\u0663 ½ ² Ⅻ ①",
    "e\u0301\u0301 double combining a\u0308\u0304 jamo \u1100\u1161\u11a8",
    "👨‍👩‍👧‍👦 family 👍🏽 tone 1️⃣ keycap 🇯🇵 flag",
    "hello!world!!!wow?! !!!!!!!!!!! !",
    "!",
    "!" * 80,
    "Ｈｅｌｌｏ　ｗｏｒｌｄ ﾊﾟﾝ ภาษาไทย",
    "(masterpiece:1.2) BREAK [cat|dog:0.5] <lora:x_y-z:1> AND (((eyes)))",
    "a very long prompt, " * 550,
    "abc" * 3400,
]


def make_tokenizer_cases():
    cases = []
    toks = {
        "sd1-tiny/tokenizer": CLIPTokenizer.from_pretrained(FIX / "sd1-tiny" / "tokenizer"),
        "sd2-tiny/tokenizer": CLIPTokenizer.from_pretrained(FIX / "sd2-tiny" / "tokenizer"),
        "sdxl-tiny/tokenizer_2": CLIPTokenizer.from_pretrained(FIX / "sdxl-tiny" / "tokenizer_2"),
    }
    for prompt in TOKENIZER_PROMPTS:
        entry = {"prompt": prompt, "ids": {}}
        for name, tok in toks.items():
            ids = tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True).input_ids
            entry["ids"][name] = ids
        cases.append(entry)
    path = FIX / "tokenizer_cases.json"
    path.write_text(json.dumps({"cases": cases}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main():
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}")
    make_sd1(FIX / "sd1-tiny")
    make_sd2(FIX / "sd2-tiny")
    make_sdxl(FIX / "sdxl-tiny")
    make_tokenizer_cases()
    make_references("sd1", FIX / "sd1-tiny", StableDiffusionPipeline, safety_checker=None)
    make_references("sd2", FIX / "sd2-tiny", StableDiffusionPipeline, safety_checker=None)
    make_references("sdxl", FIX / "sdxl-tiny", StableDiffusionXLPipeline, variant="fp16")


if __name__ == "__main__":
    sys.exit(main())
