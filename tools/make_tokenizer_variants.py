#!/usr/bin/env python3
"""Reference ids for tokenizer folders laid out the way real Hugging Face repos lay them out.

The three tiny fixture tokenizers (tools/make_fixtures.py) are what transformers 5 writes. Real
Stable Diffusion repos were saved by older transformers and spell their special tokens
differently, and transformers 5 reads those spellings with quirks that change ids: an
`AddedToken` object with `"normalized": true` is matched *after* lower-casing (so
`<|ENDOFTEXT|>` becomes the eos id), `special_tokens_map.json` overrides
`tokenizer_config.json` unless the config carries `added_tokens_decoder`, and when several
special tokens share one content the last distinct spelling decides.

Each variant is a folder of config files only, under tests/fixtures/tokenizer_variants/<name>/;
`base` names the fixture tokenizer whose vocabulary files complete it (copied next to the
configs, here and in the Rust test). Writes tests/fixtures/tokenizer_variant_cases.json with
the ids of `tok(prompt, padding="max_length", max_length=N, truncation=True)` and `tok.decode`.

    /opt/fixenv/bin/python tools/make_tokenizer_variants.py
"""

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import FIX, TOKENIZER_PROMPTS  # noqa: E402
from transformers import CLIPTokenizer  # noqa: E402

SLOW = ["vocab.json", "merges.txt"]
FAST = ["tokenizer.json"]


def obj(content, normalized=True, typed=False, **extra):
    """An AddedToken as transformers 4 serialised it (`typed`: with the `__type` tag of configs)."""
    token = {"content": content, "lstrip": False, "normalized": normalized, "rstrip": False, "single_word": False}
    token.update(extra)
    return {"__type": "AddedToken", **token} if typed else token


def hub_config(pad, typed=True):
    return {
        "add_prefix_space": False,
        "bos_token": obj("<|startoftext|>", typed=typed),
        "do_lower_case": True,
        "eos_token": obj("<|endoftext|>", typed=typed),
        "errors": "replace",
        "model_max_length": 77,
        "name_or_path": "openai/clip-vit-large-patch14",
        "pad_token": pad,
        "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": obj("<|endoftext|>", typed=typed),
    }


def hub_map(pad):
    return {
        "bos_token": obj("<|startoftext|>"),
        "eos_token": obj("<|endoftext|>"),
        "pad_token": pad,
        "unk_token": obj("<|endoftext|>"),
    }


def decoder_entry(content):
    return obj(content, normalized=False, special=True)


VARIANTS = {
    # runwayml/stable-diffusion-v1-5 tokenizer/: objects with normalized=true, pad a plain string.
    "hub-sd15": {
        "base": "sd1-tiny/tokenizer",
        "copy": SLOW,
        "files": {"tokenizer_config.json": hub_config("<|endoftext|>"), "special_tokens_map.json": hub_map("<|endoftext|>")},
    },
    # stabilityai/stable-diffusion-2-1 tokenizer/ (and SDXL tokenizer_2): the same with pad "!".
    "hub-sd21": {
        "base": "sd1-tiny/tokenizer",
        "copy": SLOW,
        "files": {"tokenizer_config.json": hub_config("!"), "special_tokens_map.json": hub_map("!")},
    },
    # transformers 4.3x save: added_tokens_decoder in the config; the stale special_tokens_map.json
    # beside it (pad <|endoftext|>) must be ignored.
    "decoder-config": {
        "base": "sd1-tiny/tokenizer",
        "copy": SLOW,
        "files": {
            "tokenizer_config.json": {
                "added_tokens_decoder": {
                    "0": decoder_entry("!"),
                    "49406": decoder_entry("<|startoftext|>"),
                    "49407": decoder_entry("<|endoftext|>"),
                },
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "pad_token": "!",
                "unk_token": "<|endoftext|>",
                "model_max_length": 77,
                "tokenizer_class": "CLIPTokenizer",
            },
            "special_tokens_map.json": hub_map("<|endoftext|>"),
        },
    },
    # special_tokens_map.json overrides the config, and spells pad as an object.
    "map-pad-object": {
        "base": "sd1-tiny/tokenizer",
        "copy": SLOW,
        "files": {
            "tokenizer_config.json": hub_config("<|endoftext|>"),
            "special_tokens_map.json": hub_map(obj("!", normalized=False)),
        },
    },
    # A config alone whose objects omit `normalized` and `special` (AddedToken defaults apply).
    "config-bare-objects": {
        "base": "sd1-tiny/tokenizer",
        "copy": SLOW,
        "files": {
            "tokenizer_config.json": {
                "bos_token": {"__type": "AddedToken", "content": "<|startoftext|>"},
                "eos_token": {"__type": "AddedToken", "content": "<|endoftext|>"},
                "pad_token": {"__type": "AddedToken", "content": "!"},
                "model_max_length": 77,
            }
        },
    },
    # Vocabulary files only: CLIPTokenizer's defaults (pad <|endoftext|>; max length given here).
    "no-config": {"base": "sd1-tiny/tokenizer", "copy": SLOW, "files": {}, "max_length": 77},
    # tokenizer.json alone: its added "!" still splits, but the pad falls back to <|endoftext|>.
    "json-no-config": {"base": "sd2-tiny/tokenizer", "copy": FAST, "files": {}, "max_length": 77},
    # A shorter window: truncation keeps max_length - 2 content ids.
    "short-window": {
        "base": "sdxl-tiny/tokenizer_2",
        "copy": SLOW,
        "files": {"tokenizer_config.json": {"pad_token": "!", "model_max_length": 16}},
    },
}


def make_variant_cases():
    out_dir = FIX / "tokenizer_variants"
    shutil.rmtree(out_dir, ignore_errors=True)
    result = {"prompts": TOKENIZER_PROMPTS, "variants": {}}
    for name, spec in VARIANTS.items():
        folder = out_dir / name
        folder.mkdir(parents=True)
        for file, content in spec["files"].items():
            (folder / file).write_text(json.dumps(content, indent=2) + "\n")
        with tempfile.TemporaryDirectory() as tmp:
            for file in spec["copy"]:
                shutil.copy(FIX / spec["base"] / file, Path(tmp) / file)
            for file in spec["files"]:
                shutil.copy(folder / file, Path(tmp) / file)
            tok = CLIPTokenizer.from_pretrained(tmp)
        max_length = spec.get("max_length", tok.model_max_length)
        ids = [
            tok(p, padding="max_length", max_length=max_length, truncation=True).input_ids for p in TOKENIZER_PROMPTS
        ]
        result["variants"][name] = {
            "base": spec["base"],
            "copy": spec["copy"],
            "max_length": max_length,
            "pad_id": tok.pad_token_id,
            "ids": ids,
            "decoded": [tok.decode(i) for i in ids],
        }
        print(name, tok.pad_token_id, {k: (v.content, v.normalized) for k, v in tok.added_tokens_decoder.items()})
    path = FIX / "tokenizer_variant_cases.json"
    text = json.dumps(result, ensure_ascii=False, indent=1)
    # One line per id list keeps the file small and diffable.
    text = re.sub(r"\[\n\s*(\d[\d,\s]*?)\n\s*\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    path.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    make_variant_cases()
