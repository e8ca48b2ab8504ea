#!/usr/bin/env python3
"""Write textual-inversion embeddings for the tiny fixture pipelines, and diffusers' pictures with them.

Run (the fixture venv of tools/make_fixtures.py; nothing beyond it is needed):

    python3 -m venv /tmp/fx && /tmp/fx/bin/pip install -r tools/requirements-fixtures.txt
    /tmp/fx/bin/python tools/make_embedding_fixtures.py      # well under a minute on 2 cores

Everything is seeded (numpy for the vectors), so running it again gives byte-identical files.
It reads tests/fixtures/sd1-tiny, tests/fixtures/sdxl-tiny and tests/fixtures/latents/64x64.safetensors
(made by tools/make_fixtures.py) and writes, under tests/fixtures/embeddings/:

  lanternstyle.safetensors  A1111's SD 1.x layout: one f32 tensor `emb_params` [2, 32] (two
                            vectors for sd1-tiny's text encoder, width 32), no metadata.
  lanternone.safetensors    the same layout with one vector, [1, 32].
  lanternxl.safetensors     A1111's / civitai's SDXL layout: `clip_l` [2, 32] for text_encoder
                            (CLIP-L's place) and `clip_g` [2, 32] for text_encoder_2 (CLIP-G's), f32.
  <case>.png                diffusers' picture with the embedding(s) loaded
  <case>-baseline.png       the same prompt without them (the name is then plain text)
  sdxl-lanternxl-eos-pooled.png   the SDXL case with the pooled text embedding taken at the
                            end-of-text token, as A1111 (and a placeholder-id implementation)
                            pools; see "SDXL pooling" below
  cases.json                described below

The vectors are seeded normal vectors, each scaled to the mean row norm of the token_embedding
of the encoder it is meant for (times GAIN), so they look like token embeddings to the encoder
and still move the picture visibly from the baseline.

References: the diffusers pipeline loaded from the fixture folder as tools/make_fixtures.py
`render` does (f32, the committed latents, 6 steps of the folder's own scheduler, guidance 7.5,
64x64), then `pipe.load_textual_inversion(file, token=<file stem>)`; for SDXL, as diffusers' docs
show for SDXL embeddings, `load_textual_inversion(sd["clip_l"], token=..., text_encoder=pipe.text_encoder,
tokenizer=pipe.tokenizer)` and the same with `clip_g`, `text_encoder_2` and `tokenizer_2`. diffusers adds
a multi-vector embedding as tokens NAME, NAME_1, ... (ids 49408 and up) and rewrites each prompt
(`maybe_convert_prompt`) so that NAME becomes "NAME NAME_1 ...". The script checks, per case and
per text-encoder call, that the rows diffusers gave those ids are the file's vectors, and that
the encoder's outputs (last and penultimate hidden states) equal A1111's way of doing it: the
plain encoder, the same sequence with placeholder id 0 at the embedding's positions, and its
token-embedding output overwritten there with the vectors (A1111's `EmbeddingsWithFixes`).

SDXL pooling: the fixture encoders carry the legacy `eos_token_id` 2 (as real SD checkpoints'
configs do, see tools/make_fixtures.py), so transformers pools at argmax(ids). With an added token (id 49408+) in the
prompt, that is the embedding's last vector, not the end-of-text token; diffusers' SDXL picture
is made with that pooled vector. A1111 keeps the name's positions at id 0, so argmax still finds
end-of-text. `a1111_png` is the picture with text_encoder_2 pooling at the first end-of-text
(everything else as diffusers does it); SD 1.x uses no pooled output, so its pictures are both.

diffusers' name matching (see `diffusers_tokenization`): the added tokens match anywhere in the
text, case-insensitively ("lanternstyle," and "(lanternstyle:1.2)" work as in A1111; so does
"lanternstyles", whose BPE tokens A1111's token-level match does not find, and "xlanternstyle"
becomes "x</w>" + the embedding where A1111 sees "x" + the name's tokens), while
`maybe_convert_prompt` expands NAME to "NAME NAME_1" with a case-sensitive str.replace, so
"Lanternstyle" gets only the first vector there (A1111: both). The cases avoid these spellings.

cases.json:
  embeddings: per file
    file, name (= file stem, the token), family (sd1/sdxl), model (fixture folder),
    vectors (rows per key), widths {component: hidden size}, keys {tensor key: component},
    seed, gain, norm (the vectors' row norm per component),
    token_ids {component: [ids diffusers assigned NAME, NAME_1, ... when loaded alone]}
  cases: per picture
    png, baseline_png, family, model, prompt, negative_prompt, steps, guidance, width, height,
    latents, scheduler ("default"), embeddings (names loaded, in load order),
    converted {component: {prompt, negative_prompt}}: the text after diffusers' maybe_convert_prompt,
    ids {component: {prompt: [77 ids], negative_prompt: [77 ids]}}: what diffusers fed each text
      encoder (component = text_encoder / text_encoder_2),
    embedding_positions {component: {prompt: [{position, id, name, vector}, ...], negative_prompt: [...]}}:
      where the added tokens sit in those ids (position counts the start token) and which vector each is,
    mean_diff_vs_baseline, max_diff_vs_baseline (0-255),
    mean_diff_negated_vectors: the same render with the vectors negated vs png (the values matter),
    reference: "diffusers load_textual_inversion",
    SDXL only: a1111_png, a1111_reference, a1111_mean_diff_vs_png, a1111_max_diff_vs_png
  name_ids: {name: [ids]}: the name's plain tokenization by the fixture tokenizer, without
    start/end ids (A1111 finds embeddings by this id sequence in the prompt's tokens)
  diffusers_tokenization: how diffusers reads a few spellings next to the loaded sd1 tokens
    (lanternstyle, lanternstyle_1, lanternone): text, converted text, ids (without start/end),
    plain_ids (the plain tokenizer's, A1111's view)
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_save
from transformers import CLIPTokenizer

import diffusers
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
OUT = FIX / "embeddings"

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

STEPS = 6
GUIDANCE = 7.5
HEIGHT = WIDTH = 64
LATENTS = "latents/64x64.safetensors"
# The vectors' row norm relative to the mean row norm of the encoder's token_embedding.
GAIN = 1.0
# The smallest mean |difference| (0-255) from the baseline a case must show.
MIN_CHANGE = 3.0
EOT = 49407

FAMILIES = {
    "sd1": dict(folder="sd1-tiny", cls=StableDiffusionPipeline, load=dict(safety_checker=None)),
    "sdxl": dict(folder="sdxl-tiny", cls=StableDiffusionXLPipeline, load=dict(variant="fp16")),
}
ENCODERS = {"sd1": ("text_encoder",), "sdxl": ("text_encoder", "text_encoder_2")}
TOKENIZER_OF = {"text_encoder": "tokenizer", "text_encoder_2": "tokenizer_2"}

# name (file stem), family, vectors, seed, {tensor key: component}
EMBEDDINGS = [
    dict(name="lanternstyle", family="sd1", vectors=2, seed=201, keys={"emb_params": "text_encoder"}),
    dict(name="lanternone", family="sd1", vectors=1, seed=202, keys={"emb_params": "text_encoder"}),
    dict(
        name="lanternxl",
        family="sdxl",
        vectors=2,
        seed=203,
        keys={"clip_l": "text_encoder", "clip_g": "text_encoder_2"},
    ),
]

# case stem, family, prompt, negative prompt, embeddings to load (in this order)
CASES = [
    ("sd1-lanternstyle", "sd1", "a lighthouse at dusk in lanternstyle, oil painting", "blurry, low quality", ["lanternstyle"]),
    ("sd1-lanternone-negative", "sd1", "a lighthouse at dusk, oil painting", "lanternone, blurry", ["lanternone"]),
    ("sd1-two-embeddings", "sd1", "lanternone lanternstyle harbour", "", ["lanternone", "lanternstyle"]),
    ("sdxl-lanternxl", "sdxl", "a lighthouse at dusk in lanternxl, oil painting", "blurry, low quality", ["lanternxl"]),
]

# Spellings whose reading by diffusers is worth knowing (recorded, not rendered).
QUIRK_TEXTS = [
    "lanternstyle, oil",
    "lanternstyle,lanternone",
    "(lanternstyle:1.2)",
    "Lanternstyle",
    "LANTERNSTYLE",
    "lanternstyles",
    "xlanternstyle",
    "lanternstyle_1",
    "lantern style",
]


# ----------------------------------------------------------------------------------------
# Files


def save_sorted(tensors, path):
    """safetensors' `save`, then the header rewritten with sorted keys: the library writes the
    header from a hash map, whose order may change between runs (the tensor bytes do not)."""
    data = safetensors_save(tensors)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    text = json.dumps(dict(sorted(header.items())), separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n :])


def write_json(path, obj):
    """Indented JSON with each list of integers (the token ids) on one line."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    text = re.sub(r"\[[\d,\s]*\d\s*\]", lambda m: "[" + ", ".join(re.findall(r"\d+", m.group())) + "]", text)
    path.write_text(text + "\n", encoding="utf-8")


def token_rows(pipe, component):
    return getattr(pipe, component).get_input_embeddings().weight.detach()


def make_vectors(spec, pipe):
    """Seeded normal vectors scaled to GAIN x the mean row norm of each encoder's token_embedding."""
    rng = np.random.default_rng(spec["seed"])
    tensors, norms, widths = {}, {}, {}
    for key, comp in spec["keys"].items():
        rows = token_rows(pipe, comp).double().numpy()
        norm = float(np.linalg.norm(rows, axis=1).mean()) * GAIN
        v = rng.standard_normal((spec["vectors"], rows.shape[1]))
        v = v / np.linalg.norm(v, axis=1, keepdims=True) * norm
        tensors[key] = torch.from_numpy(v.astype(np.float32)).contiguous()
        norms[comp] = round(norm, 6)
        widths[comp] = rows.shape[1]
    return tensors, norms, widths


# ----------------------------------------------------------------------------------------
# Pipelines


def load_pipe(family):
    spec = FAMILIES[family]
    pipe = spec["cls"].from_pretrained(FIX / spec["folder"], torch_dtype=torch.float32, **spec["load"])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_embedding(pipe, name):
    """diffusers' documented ways: the A1111 SD 1.x file by path and token; the SDXL file's
    two tensors into the two encoders with the same token."""
    path = OUT / f"{name}.safetensors"
    sd = load_file(path)
    if set(sd) == {"emb_params"}:
        pipe.load_textual_inversion(str(path), token=name)
    else:
        pipe.load_textual_inversion(sd["clip_l"], token=name, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
        pipe.load_textual_inversion(
            sd["clip_g"], token=name, text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2
        )


class IdRecorder:
    """The input ids of every text-encoder call, per component, in call order."""

    def __init__(self, pipe, family):
        self.calls = {c: [] for c in ENCODERS[family]}
        self.handles = []
        for comp in ENCODERS[family]:
            self.handles.append(
                getattr(pipe, comp).register_forward_pre_hook(self.hook(comp), with_kwargs=True)
            )

    def hook(self, comp):
        def f(_module, args, kwargs):
            ids = args[0] if args else kwargs["input_ids"]
            self.calls[comp].append(ids.detach().clone())

        return f

    def remove(self):
        for h in self.handles:
            h.remove()


def render(pipe, prompt, negative):
    """tools/make_fixtures.py `render` for the default scheduler, with the committed latents."""
    pipe.scheduler = pipe.scheduler.__class__.from_config(pipe.scheduler.config)
    lat = load_file(FIX / LATENTS)["latents"]
    with torch.no_grad():
        out = pipe(
            prompt=prompt,
            negative_prompt=negative,
            num_inference_steps=STEPS,
            guidance_scale=GUIDANCE,
            height=HEIGHT,
            width=WIDTH,
            latents=lat.clone(),
            output_type="np",
        ).images[0]
    return (out * 255).round().astype("uint8")


def save_png(pixels, name):
    Image.fromarray(pixels).save(OUT / name, optimize=False)


def diff_stats(a, b):
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(d.mean()), int(d.max())


# ----------------------------------------------------------------------------------------
# Checks


def vector_of(pipe, component, names, vectors):
    """{token id: (name, vector index, vector)} for the added tokens of `names` in `component`."""
    tok = getattr(pipe, TOKENIZER_OF[component])
    out = {}
    for name in names:
        for i, vec in enumerate(vectors[name][component]):
            token = name if i == 0 else f"{name}_{i}"
            assert token in tok.added_tokens_encoder, f"{component}: diffusers did not add {token}"
            out[tok.added_tokens_encoder[token]] = (name, i, vec)
        assert f"{name}_{len(vectors[name][component])}" not in tok.added_tokens_encoder
    return out


def a1111_encode(plain_encoder, ids, fixes):
    """A1111's way: id 0 at the embedding's positions, and the token-embedding output there
    overwritten with the vectors (`EmbeddingsWithFixes`), in the encoder without added tokens."""
    ids = ids.clone()
    for pos, vec in fixes:
        ids[0, pos] = 0

    def hook(_module, _args, output):
        output = output.clone()
        for pos, vec in fixes:
            output[0, pos] = vec
        return output

    h = plain_encoder.get_input_embeddings().register_forward_hook(hook)
    try:
        with torch.no_grad():
            return plain_encoder(ids, output_hidden_states=True), ids
    finally:
        h.remove()


def check_encoders(family, pipe, plain, rec, names, vectors):
    """Per text-encoder call of the render: the rows diffusers looked up are the file's vectors,
    and its hidden states are A1111's. Returns ids and embedding positions per component, and
    whether the pooled output (SDXL) moved off the end-of-text token."""
    ids_out, positions, pooled_moved = {}, {}, False
    for comp, calls in rec.calls.items():
        assert len(calls) == 2, f"{comp}: {len(calls)} calls"
        table = vector_of(pipe, comp, names, vectors)
        rows = token_rows(pipe, comp)
        ids_out[comp], positions[comp] = {}, {}
        for which, ids in zip(("prompt", "negative_prompt"), calls):
            ids_out[comp][which] = [int(i) for i in ids[0]]
            fixes, pos_rec = [], []
            for pos, i in enumerate(ids[0].tolist()):
                if i >= EOT + 1:
                    name, k, vec = table[i]
                    assert torch.equal(rows[i], vec), f"{comp}: row {i} is not {name}[{k}]"
                    fixes.append((pos, vec))
                    pos_rec.append(dict(position=pos, id=i, name=name, vector=k))
            positions[comp][which] = pos_rec
            with torch.no_grad():
                got = getattr(pipe, comp)(ids, output_hidden_states=True)
            want, a_ids = a1111_encode(getattr(plain, comp), ids, fixes)
            for layer in (-1, -2):
                err = float((got.hidden_states[layer] - want.hidden_states[layer]).abs().max())
                assert err < 1e-6, f"{comp} {which}: hidden state {layer} differs from A1111's by {err}"
            err = float((got[0] - want[0]).abs().max()) if got[0].ndim == 3 else 0.0
            assert err < 1e-6, f"{comp} {which}: last hidden state differs by {err}"
            if got[0].ndim == 2 and fixes:
                # The pooled (projected) output: diffusers pools at argmax(ids), A1111 at end-of-text.
                moved = int(ids[0].argmax()) != int((a_ids[0] == EOT).int().argmax())
                pooled_moved |= moved
                print(
                    f"    {comp} {which}: pooled at position {int(ids[0].argmax())} (id {int(ids[0].max())}); "
                    f"A1111 at {int(a_ids[0].argmax())}; |diff| {float((got[0] - want[0]).abs().max()):.4f}",
                    flush=True,
                )
    return ids_out, positions, pooled_moved


def negated_render(pipe, family, prompt, negative):
    """The picture with every added token's row negated (restored afterwards)."""
    saved = {}
    with torch.no_grad():
        for comp in ENCODERS[family]:
            w = getattr(pipe, comp).get_input_embeddings().weight
            saved[comp] = w[EOT + 1 :].clone()
            w[EOT + 1 :] *= -1
    pixels = render(pipe, prompt, negative)
    with torch.no_grad():
        for comp in ENCODERS[family]:
            getattr(pipe, comp).get_input_embeddings().weight[EOT + 1 :] = saved[comp]
    return pixels


def converted_texts(pipe, family, prompt, negative):
    out = {}
    for comp in ENCODERS[family]:
        tok = getattr(pipe, TOKENIZER_OF[comp])
        out[comp] = {
            "prompt": pipe.maybe_convert_prompt(prompt, tok),
            "negative_prompt": pipe.maybe_convert_prompt(negative, tok),
        }
    return out


def quirks(names, vectors, plain_tok):
    pipe = load_pipe("sd1")
    for name in names:
        load_embedding(pipe, name)
    out = []
    for text in QUIRK_TEXTS:
        conv = pipe.maybe_convert_prompt(text, pipe.tokenizer)
        ids = pipe.tokenizer(conv, add_special_tokens=False).input_ids
        plain = plain_tok(text, add_special_tokens=False).input_ids
        out.append(dict(text=text, converted=conv, ids=ids, plain_ids=plain))
        print(f"    {text!r:28} -> {conv!r:44} {ids}   plain {plain}", flush=True)
    return out


# ----------------------------------------------------------------------------------------


def main():
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in list(OUT.glob("*.png")) + list(OUT.glob("*.safetensors")) + list(OUT.glob("*.json")):
        old.unlink()

    plain = {family: load_pipe(family) for family in FAMILIES}
    # The pipelines render as tools/make_fixtures.py's do: the same settings as
    # reference/<family>/default-sq-g7.png give the same picture.
    for family, pipe in plain.items():
        pixels = render(pipe, "a lighthouse at dusk, oil painting", "blurry, low quality")
        old = np.asarray(Image.open(FIX / "reference" / family / "default-sq-g7.png"))
        mean_d, max_d = diff_stats(pixels, old)
        n = int((pixels != old).sum())
        print(f"{family}: reference/{family}/default-sq-g7.png again: {n} values differ, max {max_d}", flush=True)
        # Rounding of a few values may land otherwise on another CPU than the fixture's.
        assert max_d <= 1 and mean_d < 0.01, f"{family}: the pipeline does not render as make_fixtures.py does"

    # The files.
    records, vectors, name_ids = [], {}, {}
    for spec in EMBEDDINGS:
        family, name = spec["family"], spec["name"]
        tensors, norms, widths = make_vectors(spec, plain[family])
        path = OUT / f"{name}.safetensors"
        save_sorted(tensors, path)
        back = load_file(path)
        assert set(back) == set(spec["keys"]) and all(torch.equal(back[k], tensors[k]) for k in tensors)
        assert all(v.dtype == torch.float32 and v.shape == (spec["vectors"], widths[c]) for k, v in back.items() for c in [spec["keys"][k]])
        vectors[name] = {comp: back[key] for key, comp in spec["keys"].items()}
        # The name as plain text, without start/end ids, by each tokenizer of the model.
        toks = {comp: getattr(plain[family], TOKENIZER_OF[comp]) for comp in ENCODERS[family]}
        plain_ids = {c: t(name, add_special_tokens=False).input_ids for c, t in toks.items()}
        assert len({tuple(v) for v in plain_ids.values()}) == 1, plain_ids
        name_ids[name] = next(iter(plain_ids.values()))
        # The ids diffusers gives the name's tokens when it is loaded alone.
        pipe = load_pipe(family)
        load_embedding(pipe, name)
        token_ids = {}
        for comp in ENCODERS[family]:
            tok = getattr(pipe, TOKENIZER_OF[comp])
            token_ids[comp] = [tok.added_tokens_encoder[name if i == 0 else f"{name}_{i}"] for i in range(spec["vectors"])]
        del pipe
        records.append(
            dict(
                file=path.name,
                name=name,
                family=family,
                model=FAMILIES[family]["folder"],
                vectors=spec["vectors"],
                widths=widths,
                keys=spec["keys"],
                seed=spec["seed"],
                gain=GAIN,
                norm=norms,
                token_ids=token_ids,
            )
        )
        print(f"{path.name}: {', '.join(f'{k} {tuple(v.shape)}' for k, v in back.items())}, norms {norms}, "
              f"plain ids {name_ids[name]}, diffusers ids {token_ids}", flush=True)

    # The pictures.
    cases = []
    for stem, family, prompt, negative, names in CASES:
        print(f"{stem}: {prompt!r} / {negative!r}", flush=True)
        base = render(plain[family], prompt, negative)
        pipe = load_pipe(family)
        for name in names:
            load_embedding(pipe, name)
        rec = IdRecorder(pipe, family)
        pixels = render(pipe, prompt, negative)
        rec.remove()
        ids, positions, pooled_moved = check_encoders(family, pipe, plain[family], rec, names, vectors)
        used = {p["name"] for comp in positions.values() for which in comp.values() for p in which}
        assert used == set(names), f"{stem}: the ids use {used}, not {names}"
        png, baseline_png = f"{stem}.png", f"{stem}-baseline.png"
        save_png(pixels, png)
        save_png(base, baseline_png)
        mean_b, max_b = diff_stats(pixels, base)
        assert mean_b >= MIN_CHANGE, f"{stem}: the embedding moves the picture by only {mean_b:.2f}/255"
        for comp in ids:
            for which in ("prompt", "negative_prompt"):
                print(f"    {comp} {which}: {ids[comp][which][:16]}  embedding at {positions[comp][which]}", flush=True)
        print(f"    vs baseline: mean {mean_b:.2f} max {max_b}", flush=True)
        # The vectors' values matter, not only the sequence they make: the same render with
        # every added row negated moves the picture too.
        negated = negated_render(pipe, family, prompt, negative)
        mean_n, _ = diff_stats(negated, pixels)
        print(f"    vectors negated vs diffusers: mean {mean_n:.2f}", flush=True)
        assert mean_n >= MIN_CHANGE, f"{stem}: the vectors' values move the picture by only {mean_n:.2f}/255"
        case = dict(
            png=png,
            baseline_png=baseline_png,
            family=family,
            model=FAMILIES[family]["folder"],
            prompt=prompt,
            negative_prompt=negative,
            steps=STEPS,
            guidance=GUIDANCE,
            width=WIDTH,
            height=HEIGHT,
            latents=LATENTS,
            scheduler="default",
            embeddings=names,
            converted=converted_texts(pipe, family, prompt, negative),
            ids=ids,
            embedding_positions=positions,
            mean_diff_vs_baseline=round(mean_b, 3),
            mean_diff_negated_vectors=round(mean_n, 3),
            max_diff_vs_baseline=max_b,
            reference="diffusers load_textual_inversion",
        )
        if family == "sdxl":
            assert pooled_moved, "expected diffusers' argmax pooling to land on the embedding"
            # A1111's pooling: text_encoder_2 pools at the first end-of-text token.
            pipe.text_encoder_2.text_model.eos_token_id = EOT
            a_pixels = render(pipe, prompt, negative)
            a_png = f"{stem}-eos-pooled.png"
            save_png(a_pixels, a_png)
            mean_a, max_a = diff_stats(a_pixels, pixels)
            mean_ab, _ = diff_stats(a_pixels, base)
            print(f"    eos-pooled vs diffusers: mean {mean_a:.2f} max {max_a}; vs baseline mean {mean_ab:.2f}", flush=True)
            case.update(
                a1111_png=a_png,
                a1111_reference=(
                    "diffusers load_textual_inversion, with text_encoder_2 pooling at the first end-of-text token "
                    "(A1111 keeps id 0 at the embedding's positions, so argmax(ids) finds end-of-text); diffusers "
                    "pools at argmax(ids), the embedding's last added token"
                ),
                a1111_mean_diff_vs_png=round(mean_a, 3),
                a1111_max_diff_vs_png=max_a,
            )
        cases.append(case)
        del pipe

    print("diffusers' reading of some spellings (sd1, lanternstyle and lanternone loaded):", flush=True)
    plain_tok = CLIPTokenizer.from_pretrained(FIX / "sd1-tiny" / "tokenizer")
    quirk_records = quirks(["lanternstyle", "lanternone"], vectors, plain_tok)

    write_json(
        OUT / "cases.json",
        dict(embeddings=records, cases=cases, name_ids=name_ids, diffusers_tokenization=quirk_records),
    )
    total = 0
    for p in sorted(OUT.iterdir()):
        total += p.stat().st_size
        print(f"{p.name:36} {p.stat().st_size:8d} bytes", flush=True)
    print(f"{'total':36} {total:8d} bytes", flush=True)


if __name__ == "__main__":
    sys.exit(main())
