#!/usr/bin/env python3
"""Reference conditioning for Lantern's A1111 prompt syntax, on the tiny fixture checkpoints.

Written from AUTOMATIC1111's documented algorithm (modules/prompt_parser.py
`parse_prompt_attention` and its doctests, modules/sd_hijack_clip.py `tokenize_line` /
`process_tokens`, modules/sd_emphasis.py "Original") and Forge's SDXL conventions
(backend/text_processing/classic_engine.py): our own code, run with transformers'
CLIPTextModel on tests/fixtures/{sd1,sd2,sdxl}-tiny. Nothing here is needed at test time.

    /path/to/venv/bin/python tools/a1111_prompt_ref.py

Writes tests/fixtures/a1111_prompts/:
  cases.json                 per case: prompt, clip skip, parsed pieces, each encoder's chunk
                             ids / weights and A1111 token count, tensor names
  <family>.safetensors       `<case>.context` [1, 77·chunks, dim] (f32), SDXL `<case>.pooled`
  <family>-<pic>.png         pictures: diffusers' UNet + Euler (6 steps, fixed latents,
                             guidance 7.5) on these conditionings, classifier-free guidance
                             computed by hand, cond and uncond as separate UNet calls
                             (A1111's way when their lengths differ)
"""

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
OUT = FIX / "a1111_prompts"

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

# ----------------------------------------------------------------------------------------
# The parser: A1111's emphasis grammar, as its docstring describes it.

ATTENTION = re.compile(
    r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:"
)
BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_attention(text):
    pieces = []  # [text, weight]
    round_open, square_open = [], []

    def scale(start, factor):
        for piece in pieces[start:]:
            piece[1] *= factor

    for m in ATTENTION.finditer(text):
        token, number = m.group(0), m.group(1)
        if token.startswith("\\"):
            pieces.append([token[1:], 1.0])
        elif token == "(":
            round_open.append(len(pieces))
        elif token == "[":
            square_open.append(len(pieces))
        elif number is not None and round_open:
            scale(round_open.pop(), float(number))
        elif token == ")" and round_open:
            scale(round_open.pop(), 1.1)
        elif token == "]" and square_open:
            scale(square_open.pop(), 1 / 1.1)
        else:
            for i, part in enumerate(BREAK.split(token)):
                if i:
                    pieces.append(["BREAK", -1])
                pieces.append([part, 1.0])
    for start in round_open:
        scale(start, 1.1)
    for start in square_open:
        scale(start, 1 / 1.1)
    if not pieces:
        pieces = [["", 1.0]]
    merged = [pieces[0]]
    for piece in pieces[1:]:
        if merged[-1][1] == piece[1]:
            merged[-1][0] += piece[0]
        else:
            merged.append(piece)
    return merged


DOCTESTS = [
    ("normal text", [["normal text", 1.0]]),
    ("an (important) word", [["an ", 1.0], ["important", 1.1], [" word", 1.0]]),
    ("(unbalanced", [["unbalanced", 1.1]]),
    ("\\(literal\\]", [["(literal]", 1.0]]),
    ("(unnecessary)(parens)", [["unnecessaryparens", 1.1]]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ["a ", 1.0],
            ["house", 1.5730000000000004],
            [" ", 1.1],
            ["on", 1.0],
            [" a ", 1.1],
            ["hill", 0.55],
            [", sun, ", 1.1],
            ["sky", 1.4641000000000006],
            [".", 1.1],
        ],
    ),
]

# ----------------------------------------------------------------------------------------
# Chunks: tokenize_line.

CHUNK = 75
BACKTRACK = 20


def chunk_prompt(tokenizer, text):
    parsed = parse_attention(text)
    tokenized = tokenizer([t for t, _ in parsed], truncation=False, add_special_tokens=False)["input_ids"]
    comma = tokenizer.get_vocab().get(",</w>")
    start, end, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    chunks, count = [], 0
    ids, mults, last_comma = [], [], -1

    def close(is_last=False):
        nonlocal ids, mults, count, last_comma
        count += len(ids) if is_last else CHUNK
        fill = CHUNK - len(ids)
        row = [start] + ids + [end] * max(fill, 0) + [end]
        w = [1.0] + mults + [1.0] * max(fill, 0) + [1.0]
        # process_tokens: after the first end token, the pad id (SD 2.x / OpenCLIP: 0).
        if pad != end:
            first = row.index(end)
            row = row[: first + 1] + [pad] * (len(row) - first - 1)
        chunks.append((row, w))
        ids, mults, last_comma = [], [], -1

    for tokens, (piece, weight) in zip(tokenized, parsed):
        if piece == "BREAK" and weight == -1:
            close()
            continue
        for token in tokens:
            if token == comma:
                last_comma = len(ids)
            elif len(ids) == CHUNK and last_comma != -1 and CHUNK - last_comma <= BACKTRACK:
                cut = last_comma + 1
                moved_ids, moved_mults = ids[cut:], mults[cut:]
                ids, mults = ids[:cut], mults[:cut]
                close()
                ids, mults = moved_ids, moved_mults
            if len(ids) == CHUNK:
                close()
            ids.append(token)
            mults.append(weight)
    if ids or not chunks:
        close(is_last=True)
    return parsed, chunks, count


def empty_chunk(tokenizer):
    start, end, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    return [start, end] + [pad] * (CHUNK), [1.0] * (CHUNK + 2)


# ----------------------------------------------------------------------------------------
# Encoding: hidden state, emphasis "Original", chunks concatenated.


def encode(family, encoders, text, clip_skip):
    """Returns (context [1, T, D], pooled or None, per-encoder chunk info, parsed)."""
    contexts, pooled, info = [], None, []
    all_chunks = []
    for tokenizer, _ in encoders:
        parsed, chunks, count = chunk_prompt(tokenizer, text)
        all_chunks.append(chunks)
        info.append({"ids": [c[0] for c in chunks], "weights": [c[1] for c in chunks], "token_count": count})
    most = max(len(c) for c in all_chunks)
    for (tokenizer, model), chunks in zip(encoders, all_chunks):
        chunks = chunks + [empty_chunk(tokenizer)] * (most - len(chunks))
        zs = []
        for i, (ids, weights) in enumerate(chunks):
            with torch.no_grad():
                out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
                if family == "sdxl":
                    z = out.hidden_states[-max(clip_skip, 2)]
                else:
                    z = out.hidden_states[-clip_skip]
                    z = getattr(model, "text_model", model).final_layer_norm(z)
                if i == 0 and hasattr(out, "text_embeds"):
                    pooled = out.text_embeds
                original_mean = z.mean()
                z = z * torch.asarray(weights).reshape(1, -1, 1).expand(z.shape)
                new_mean = z.mean()
                z = z * (original_mean / new_mean)
            zs.append(z)
        contexts.append(torch.hstack(zs))
    context = torch.cat(contexts, dim=-1)
    return context, pooled, info, parsed


def load_encoders(family):
    folder = FIX / f"{family}-tiny"
    if family == "sdxl":
        return [
            (
                CLIPTokenizer.from_pretrained(folder / "tokenizer"),
                CLIPTextModel.from_pretrained(folder / "text_encoder", variant="fp16").float().eval(),
            ),
            (
                CLIPTokenizer.from_pretrained(folder / "tokenizer_2"),
                CLIPTextModelWithProjection.from_pretrained(folder / "text_encoder_2", variant="fp16").float().eval(),
            ),
        ]
    return [
        (
            CLIPTokenizer.from_pretrained(folder / "tokenizer"),
            CLIPTextModel.from_pretrained(folder / "text_encoder").float().eval(),
        )
    ]


# ----------------------------------------------------------------------------------------
# The prompts.

WORDS = (
    "castle knight dragon forest river mountain sunset cloud storm ocean ship lantern garden "
    "flower meadow village tower bridge valley desert canyon glacier aurora nebula comet"
).split()


def long_with_commas(n_words, group):
    """n_words words, a comma after every `group` words (phrases like a tag list)."""
    out = []
    for i in range(n_words):
        out.append(WORDS[i % len(WORDS)])
        if (i + 1) % group == 0:
            out[-1] += ","
    return " ".join(out)


LONG_TAGS = long_with_commas(190, 3)  # ~250 tokens, commas every 4 tokens
LONG_SPARSE = long_with_commas(200, 17)  # commas every 18 tokens: some chunk ends find none
LONG_NO_COMMA = " ".join(WORDS[i % len(WORDS)] for i in range(160))
LONG_WEIGHTED = "(" + long_with_commas(60, 5) + ":1.3), [" + long_with_commas(50, 7) + "], " + long_with_commas(40, 4)

PROMPTS = {
    "plain": "a red fox in the snow",
    "empty": "",
    "doc_important": "an (important) word",
    "doc_unbalanced": "(unbalanced",
    "doc_literal": "\\(literal\\]",
    "doc_parens": "(unnecessary)(parens)",
    "doc_house": "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
    "weights": "a (red:1.3) fox in the [snow], (masterpiece:1.2), [[blurry]]",
    "nested": "((((a fox)))) [[[[snow]]]] ((fox:1.5):0.8) ([mixed])",
    "spaces": "(fox: 1.2 ), (snow :0.7), ( tree:\t2 )",
    "numbers": "(a:.5) (b:+2) (c:1.) (d:-.25)",
    "zero_negative": "(fox:0), (snow:-0.5), a tree, (sky:-1)",
    "escapes": "a \\(fox\\) with a \\[hat\\] and a back\\\\slash \\ lone",
    "unbalanced": "((a fox [in the snow",
    "unbalanced_close": "a fox) in ] the snow))",
    "only_brackets": "(((([[[]]]))))",
    "colon_text": "(a:1e308) (b:nan) ratio 16:9 (c:x)",
    "break": "a red fox BREAK in the snow BREAK at night",
    "break_first": "BREAK a fox",
    "break_in_brackets": "(a fox BREAK snow), BREAKfast, BREAK",
    "break_weights": "(fox:1.4) BREAK [snow]",
    "chinese": "一只(红色:1.2)的狐狸在雪地里, 月光, [模糊]",
    "bang": "wow! a fox!!! (really!:1.2)",
    # SDXL's two tokenizers differ on `!` (the second one's pad token): different chunk counts.
    "bangs": "a fox!!!!!!!!!!!! " * 10,
    "special": "a <|endoftext|> fox (<|startoftext|>:1.1) end",
    "long_tags": LONG_TAGS,
    "long_sparse": LONG_SPARSE,
    "long_no_comma": LONG_NO_COMMA,
    "long_weighted": LONG_WEIGHTED,
    "negative_short": "blurry, low quality",
    "negative_weighted": "(blurry:1.4), [low quality], ugly",
}

# (case name, prompt key, clip skip); every family gets these.
CASES = [(key, key, 1) for key in PROMPTS]
CASES += [("weights-skip2", "weights", 2), ("long_tags-skip2", "long_tags", 2), ("doc_house-skip3", "doc_house", 3)]

# Pictures: (name, prompt key, negative key or None, clip skip).
PICTURES = [
    ("weights", "weights", "negative_short", 1),
    ("long-vs-short", "long_weighted", "negative_weighted", 1),
    ("break-skip2", "break_weights", "negative_short", 2),
    ("chinese-empty-neg", "chinese", None, 1),
]

STEPS = 6
GUIDANCE = 7.5


def to_pixels(vae, latents):
    with torch.no_grad():
        x = vae.decode(latents / vae.config.scaling_factor).sample
    x = (x / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return (x * 255).round().astype("uint8")


def denoise(family, unet, vae, scheduler_config, cond, uncond, latents, h, w):
    """Euler with classifier-free guidance by hand: uncond and cond as separate UNet calls."""
    scheduler = EulerDiscreteScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(STEPS)
    x = latents * scheduler.init_noise_sigma
    time_ids = torch.tensor([[h, w, 0, 0, h, w]], dtype=torch.float32)
    for t in scheduler.timesteps:
        inp = scheduler.scale_model_input(x, t)
        preds = []
        for context, pooled in (uncond, cond):
            extra = {}
            if family == "sdxl":
                extra["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": time_ids}
            with torch.no_grad():
                preds.append(unet(inp, t, encoder_hidden_states=context, **extra).sample)
        noise = preds[0] + GUIDANCE * (preds[1] - preds[0])
        x = scheduler.step(noise, t, x).prev_sample
    return to_pixels(vae, x)


def pipeline_check(family, pipe, cond, uncond, latents, h, w, expected):
    """The hand-written loop is diffusers' pipeline when the lengths agree."""
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    kwargs = dict(
        prompt_embeds=cond[0],
        negative_prompt_embeds=uncond[0],
        num_inference_steps=STEPS,
        guidance_scale=GUIDANCE,
        height=h,
        width=w,
        latents=latents.clone(),
        output_type="np",
    )
    if family == "sdxl":
        kwargs.update(pooled_prompt_embeds=cond[1], negative_pooled_prompt_embeds=uncond[1])
    with torch.no_grad():
        image = pipe(**kwargs).images[0]
    pixels = (image * 255).round().astype("uint8")
    diff = np.abs(pixels.astype(int) - expected.astype(int)).max()
    print(f"  {family}: pipeline vs hand loop max diff {diff}")
    assert diff <= 1, diff


def main():
    for text, expected in DOCTESTS:
        got = parse_attention(text)
        assert got == expected, (text, got)
    OUT.mkdir(parents=True, exist_ok=True)
    cases = []
    for family in ["sd1", "sd2", "sdxl"]:
        encoders = load_encoders(family)
        tensors = {}
        encoded = {}
        for name, key, skip in CASES:
            if family == "sdxl" and skip > 2:
                continue  # beyond the fixture's 2-layer second encoder
            context, pooled, info, parsed = encode(family, encoders, PROMPTS[key], skip)
            encoded[(key, skip)] = (context, pooled)
            tensors[f"{name}.context"] = context.contiguous()
            if pooled is not None:
                tensors[f"{name}.pooled"] = pooled.contiguous()
            assert all(math.isfinite(w) for _, w in parsed)
            cases.append(
                {
                    "family": family,
                    "name": name,
                    "prompt": PROMPTS[key],
                    "clip_skip": skip,
                    # Weights as Python's repr: exact, whatever JSON reader the test uses.
                    "parsed": [[t, repr(float(w))] for t, w in parsed],
                    "encoders": info,
                    "context_shape": list(context.shape),
                }
            )
        save_file(tensors, OUT / f"{family}.safetensors", metadata={"format": "pt"})

        # Pictures through diffusers' UNet.
        folder = FIX / f"{family}-tiny"
        variant = {"variant": "fp16"} if family == "sdxl" else {}
        unet = UNet2DConditionModel.from_pretrained(folder / "unet", **variant).float().eval()
        vae = AutoencoderKL.from_pretrained(folder / "vae", **variant).float().eval()
        scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        latents = load_file(FIX / "latents" / "64x64.safetensors")["latents"]
        for pic, key, neg_key, skip in PICTURES:
            cond = encode(family, encoders, PROMPTS[key], skip)[:2]
            if neg_key is None and family == "sdxl":
                # force_zeros_for_empty_prompt: zeros shaped like an empty prompt's (one chunk).
                empty = encode(family, encoders, "", skip)[:2]
                uncond = (torch.zeros_like(empty[0]), torch.zeros_like(empty[1]))
            else:
                uncond = encode(family, encoders, PROMPTS[neg_key] if neg_key else "", skip)[:2]
            pixels = denoise(family, unet, vae, scheduler_config, cond, uncond, latents, 64, 64)
            file = f"{family}-{pic}.png"
            Image.fromarray(pixels).save(OUT / file, optimize=False)
            print(f"{file}: cond {tuple(cond[0].shape)} uncond {tuple(uncond[0].shape)} std {pixels.std():.1f}")
            cases.append(
                {
                    "family": family,
                    "name": f"picture:{pic}",
                    "picture": file,
                    "prompt": PROMPTS[key],
                    "negative_prompt": PROMPTS[neg_key] if neg_key else "",
                    "clip_skip": skip,
                    "steps": STEPS,
                    "guidance": GUIDANCE,
                    "width": 64,
                    "height": 64,
                    "latents": "latents/64x64.safetensors",
                    "cond_tokens": cond[0].shape[1],
                    "uncond_tokens": uncond[0].shape[1],
                }
            )
            if pic == "weights":
                cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
                extra = {"variant": "fp16"} if family == "sdxl" else {"safety_checker": None}
                pipe = cls.from_pretrained(folder, torch_dtype=torch.float32, **extra)
                pipe.set_progress_bar_config(disable=True)
                pipeline_check(family, pipe, cond, uncond, latents, 64, 64, pixels)
    doctests = [{"prompt": p, "parsed": [[t, repr(float(w))] for t, w in e]} for p, e in DOCTESTS]
    (OUT / "cases.json").write_text(
        json.dumps({"doctests": doctests, "cases": cases}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"{len(cases)} cases")


if __name__ == "__main__":
    sys.exit(main())
