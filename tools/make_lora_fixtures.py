#!/usr/bin/env python3
"""Write small LoRA files for the tiny fixture pipelines, and diffusers' pictures with them.

Run (the fixture venv of tools/make_fixtures.py, plus PEFT, which diffusers' LoRA loading needs;
0.21.2 is the newest on PyPI, and transformers 5.24's own `add_adapter` wants 0.22, so the
script injects the text encoder's adapters with PEFT directly):

    python3 -m venv /tmp/fx && /tmp/fx/bin/pip install -r tools/requirements-fixtures.txt peft==0.21.2
    /tmp/fx/bin/python tools/make_lora_fixtures.py      # about a minute on 2 cores

Everything is seeded (numpy for the LoRA values), so running it again gives byte-identical files.
It reads tests/fixtures/sd1-tiny, tests/fixtures/sdxl-tiny and tests/fixtures/latents/64x64.safetensors
(made by tools/make_fixtures.py) and writes, under tests/fixtures/loras/:

  sd1-kohya.safetensors    kohya/A1111 layout for sd1-tiny, fp16: every Linear of the UNet's
                           transformer blocks plus each attention's proj_in/proj_out (1x1 convs
                           in this model: down [r,in,1,1], up [out,r,1,1]), and the text
                           encoder's q/k/v/out_proj and mlp fc1/fc2. Rank 4, alpha 2.0 (an f32
                           scalar), except two targets that carry no `.alpha` (alpha = rank).
  sd1-peft.safetensors     diffusers/PEFT layout for sd1-tiny, f32, rank 8, no alphas (so scale 1):
                           written by diffusers' own `save_lora_weights` from PEFT adapters on the
                           UNet's attention to_q/to_k/to_v/to_out.0 and the text encoder's
                           q/k/v/out_proj (`unet.<module>.lora_A.weight`,
                           `text_encoder.text_model.encoder.layers.<i>.self_attn.q_proj.lora_B.weight`;
                           `text_model.` as transformers 4 names it, which most such files in the
                           wild have: transformers 5 leaves it out and diffusers loads both).
  sd1-locon.safetensors    kohya LoCon layout for sd1-tiny, fp16, rank 4, alpha 4: every resnet's
                           conv1/conv2 (3x3: down [r,in,3,3], up [out,r,1,1]), conv_shortcut
                           (1x1), the down/upsamplers' convs, and a few attention Linears; no
                           text encoder part.
  sdxl-kohya.safetensors   kohya SDXL layout for sdxl-tiny, fp16 (alphas too, as kohya's fp16
                           save writes them), rank 4, alpha 8: the UNet's attention Linears named
                           by the original SGM blocks (`lora_unet_input_blocks_3_1_...`,
                           `middle_block_1`, `output_blocks_<n>_1`), mapped with the converter of
                           tools/make_single_file_fixtures.py; `lora_te1_` (CLIP-L) and `lora_te2_`
                           (the CLIPTextModelWithProjection encoder) q/k/v/out_proj and fc1/fc2.
  nomatch.safetensors      a valid kohya LoRA whose keys name no module of either model.
  <stem>-<weight>.png      diffusers' pictures with each LoRA at two multipliers
  <family>-baseline.png    the same settings without a LoRA
  cases.json               `loras`: per LoRA file its layout, model folder, A1111's addnet hash
                           (SHA-256 of the bytes after the header, 12 digits), tensor dtypes, every
                           target (key prefix, component, the tensor it changes in that component's
                           safetensors, rank, alpha or null) and the reference pictures with how
                           each was made; `baselines`: the pictures without LoRA; `nomatch`.

References: the diffusers pipeline loaded from the fixture folder as tools/make_fixtures.py
`render` does (f32, fixed latents, 6 steps of the folder's scheduler), `load_lora_weights` and
`set_adapters(..., adapter_weights=[w])`, which scales the UNet and the text encoders alike
(checked per target against the file's tensors before rendering). Each is compared with the same
picture from a hand merge, W + w * alpha/rank * (up.flatten(1) @ down.flatten(1)).reshape(W.shape),
into the fixture's own weights, and the script stops if the two differ by more than 2/255.

Where diffusers reads a file otherwise than kohya and A1111 do, the hand merge is the reference
and `reference` says so. diffusers 0.42 gives a target without `.alpha` the file's most common
alpha instead of alpha = rank, so sd1-kohya's two alpha-less targets get half kohya's scale
there; its pictures are the hand merge's (diffusers' own agree with them once those two
targets' scale is set to kohya's, which the script checks).
The gains in SPECS make each LoRA at weight 1 move the picture by ~10/255 on average.
"""

import hashlib
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_save

import diffusers
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_single_file_fixtures import unet_to_ldm  # noqa: E402  (our diffusers -> SGM block names)

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
OUT = FIX / "loras"

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

STEPS = 6
GUIDANCE = 7.5
HEIGHT = WIDTH = 64
PROMPT = "a lighthouse at dusk, oil painting"
NEGATIVE = "blurry, low quality"
LATENTS = "latents/64x64.safetensors"

# Largest pixel difference (0-255) allowed between diffusers' picture and the hand merge's.
AGREE_MAX = 2

FAMILIES = {
    "sd1": dict(folder="sd1-tiny", cls=StableDiffusionPipeline, load=dict(safety_checker=None), variant=None),
    "sdxl": dict(folder="sdxl-tiny", cls=StableDiffusionXLPipeline, load=dict(variant="fp16"), variant="fp16"),
}


@dataclass
class Target:
    prefix: str  # the key prefix in the LoRA file
    component: str  # unet / text_encoder / text_encoder_2
    module: str  # the diffusers module name inside the component
    rank: int
    alpha: float | None  # None: no alpha in the file (kohya and A1111 then use alpha = rank)
    shape: tuple = ()  # of the module's weight
    down: np.ndarray = field(default=None, repr=False)
    up: np.ndarray = field(default=None, repr=False)

    @property
    def tensor(self):
        return self.module + ".weight"

    @property
    def scale(self):
        return (self.rank if self.alpha is None else self.alpha) / self.rank


# ----------------------------------------------------------------------------------------
# Which modules


UNET_ATTN_LINEARS = tuple(
    f"{a}.{p}" for a in ("attn1", "attn2") for p in ("to_q", "to_k", "to_v", "to_out.0")
) + ("ff.net.0.proj", "ff.net.2")
TE_LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2")


def unet_attention_modules(unet, linears=UNET_ATTN_LINEARS, proj=True):
    out = []
    for name, _ in unet.named_modules():
        if ".transformer_blocks." in name and name.endswith(linears):
            out.append(name)
        elif proj and ".attentions." in name and re.search(r"\.attentions\.\d+\.proj_(in|out)$", name):
            out.append(name)
    return out


def unet_conv_modules(unet):
    """Every resnet's conv1/conv2/conv_shortcut and the down/upsamplers' convs."""
    pat = re.compile(r"(.*\.resnets\.\d+\.(conv1|conv2|conv_shortcut)|.*\.(downsamplers|upsamplers)\.0\.conv)$")
    return [n for n, m in unet.named_modules() if pat.match(n) and isinstance(m, torch.nn.Conv2d)]


def te_modules(te, kinds=TE_LINEARS):
    """Text encoder modules by their names in the fixture's weight files (`text_model.*`)."""
    pat = re.compile(r"text_model\.encoder\.layers\.\d+\.(" + "|".join(re.escape(k) for k in kinds) + ")")
    return [file_name(te, n) for n, _ in te.named_modules() if pat.fullmatch(file_name(te, n))]


def file_name(model, name):
    """transformers 5 flattens CLIPTextModel (no `text_model.` level, unlike the weight files and
    CLIPTextModelWithProjection): a module or tensor name as the weight files spell it."""
    if hasattr(model, "text_model") or not hasattr(model, "encoder") or not name or name.startswith("text_model."):
        return name
    return "text_model." + name


def model_name(model, name):
    """The inverse of `file_name`: the name inside `model`."""
    return name if hasattr(model, "text_model") else name.removeprefix("text_model.")


def submodule(pipe, t):
    model = getattr(pipe, t.component)
    return model.get_submodule(model_name(model, t.module))


def kohya_name(module):
    return module.replace(".", "_")


def sgm_unet_name(module, unet_config):
    """A diffusers UNet module name in the original SGM/LDM blocks (kohya's SDXL LoRA names)."""
    up_attn = [t.startswith("CrossAttn") for t in unet_config["up_block_types"]]
    (ldm,) = unet_to_ldm({module + ".weight": None}, unet_config["layers_per_block"], up_attn)
    return ldm.removeprefix("model.diffusion_model.").removesuffix(".weight")


# ----------------------------------------------------------------------------------------
# Values


def fill(targets, pipe, seed, gain):
    """Seeded LoRA matrices: delta = scale * up @ down has entries of about gain / sqrt(fan_in),
    i.e. `gain` times a fresh layer's weights, whatever rank and alpha say."""
    rng = np.random.default_rng(seed)
    for t in targets:
        w = submodule(pipe, t).weight
        t.shape = tuple(w.shape)
        out_ch, in_ch = t.shape[:2]
        k = t.shape[2:]  # () for Linear, (kh, kw) for Conv2d
        fan_in = in_ch * int(np.prod(k)) if k else in_ch
        t.down = (rng.standard_normal((t.rank, in_ch) + k) / np.sqrt(fan_in)).astype(np.float32)
        up = rng.standard_normal((out_ch, t.rank) + ((1, 1) if k else ())) * gain / np.sqrt(t.rank) / t.scale
        t.up = up.astype(np.float32)


def save_sorted(sd, path, metadata):
    """safetensors' save_file, but with the header's metadata in sorted order: safetensors
    writes it in hash-map order, which changes from run to run (the tensor bytes do not)."""
    data = safetensors_save(sd, metadata=metadata)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", None)
    ordered = ({"__metadata__": dict(sorted(meta.items()))} if meta else {}) | dict(sorted(header.items()))
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n :])


def write_kohya(path, targets, dtype, alpha_dtype, metadata):
    sd = {}
    for t in targets:
        sd[t.prefix + ".lora_down.weight"] = torch.from_numpy(t.down).to(dtype).contiguous()
        sd[t.prefix + ".lora_up.weight"] = torch.from_numpy(t.up).to(dtype).contiguous()
        if t.alpha is not None:
            sd[t.prefix + ".alpha"] = torch.tensor(t.alpha, dtype=alpha_dtype)
    save_sorted(sd, path, metadata)


def write_peft_sd1(path, pipe, targets):
    """The file diffusers writes: PEFT adapters on the models, `get_peft_model_state_dict`,
    `save_lora_weights`. Checks that its keys are `<component>.<module>.lora_A/B.weight`."""
    from peft import LoraConfig, inject_adapter_in_model
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils import get_peft_model_state_dict

    rank = targets[0].rank
    unet_cfg = LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    te_cfg = LoraConfig(r=rank, lora_alpha=rank, target_modules=["q_proj", "k_proj", "v_proj", "out_proj"])
    pipe.unet.add_adapter(unet_cfg)
    # transformers 5.24's own `add_adapter` asks for peft >= 0.22 (not on PyPI yet); its
    # `load_adapter`, which diffusers uses, and PEFT's injection that both call work with 0.21.
    inject_adapter_in_model(te_cfg, pipe.text_encoder, adapter_name="default")
    by_name = {(t.component, t.module): t for t in targets}
    seen = set()
    with torch.no_grad():
        for comp in ("unet", "text_encoder"):
            model = getattr(pipe, comp)
            for name, mod in model.named_modules():
                if isinstance(mod, BaseTunerLayer):
                    name = file_name(model, name)
                    t = by_name[(comp, name)]
                    mod.lora_A["default"].weight.copy_(torch.from_numpy(t.down))
                    mod.lora_B["default"].weight.copy_(torch.from_numpy(t.up))
                    seen.add((comp, name))
    assert seen == set(by_name), "PEFT targeted other modules than planned"
    # With transformers 5 the text encoder's names lack `text_model.` (see file_name); files
    # saved with transformers 4, most of those in the wild, have it: write those names.
    te = pipe.text_encoder
    te_layers = {file_name(te, k): v for k, v in get_peft_model_state_dict(te).items()}
    StableDiffusionPipeline.save_lora_weights(
        path.parent,
        unet_lora_layers=get_peft_model_state_dict(pipe.unet),
        text_encoder_lora_layers=te_layers,
        weight_name=path.name,
    )
    keys = set(load_file(path))
    want = {f"{t.prefix}.lora_{ab}.weight" for t in targets for ab in "AB"}
    assert keys == want, sorted(keys ^ want)[:10]


def read_back(path, targets, down_key, up_key):
    """The values as stored (fp16-rounded where the file is fp16), and a check of the layout."""
    with safe_open(path, "pt") as f:
        keys = set(f.keys())
        for t in targets:
            t.down = f.get_tensor(t.prefix + down_key).float().numpy()
            t.up = f.get_tensor(t.prefix + up_key).float().numpy()
            assert t.down.shape[0] == t.rank and t.up.shape[1] == t.rank
            assert t.up.shape[0] == t.shape[0] and t.down.shape[1:] == t.shape[1:], (t.prefix, t.down.shape, t.shape)
            alpha_key = t.prefix + ".alpha"
            if t.alpha is None:
                assert alpha_key not in keys
            else:
                assert float(f.get_tensor(alpha_key)) == t.alpha and f.get_tensor(alpha_key).ndim == 0
    expected = {t.prefix + k for t in targets for k in (down_key, up_key)}
    expected |= {t.prefix + ".alpha" for t in targets if t.alpha is not None}
    assert keys == expected, sorted(keys ^ expected)[:10]


def delta(t, w):
    d = torch.from_numpy(t.up).flatten(1) @ torch.from_numpy(t.down).flatten(1)
    return (w * t.scale) * d.reshape(t.shape)


def addnet_hash(path):
    """A1111's LoRA hash: SHA-256 of the bytes after the safetensors header, first 12 digits."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + n :]).hexdigest()[:12]


# ----------------------------------------------------------------------------------------
# Pictures


def load_pipe(family):
    spec = FAMILIES[family]
    pipe = spec["cls"].from_pretrained(FIX / spec["folder"], torch_dtype=torch.float32, **spec["load"])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def render(pipe):
    """tools/make_fixtures.py `render` for the default scheduler, with the committed latents."""
    pipe.scheduler = pipe.scheduler.__class__.from_config(pipe.scheduler.config)
    lat = load_file(FIX / LATENTS)["latents"]
    with torch.no_grad():
        out = pipe(
            prompt=PROMPT,
            negative_prompt=NEGATIVE,
            num_inference_steps=STEPS,
            guidance_scale=GUIDANCE,
            height=HEIGHT,
            width=WIDTH,
            latents=lat.clone(),
            output_type="np",
        ).images[0]
    return (out * 255).round().astype("uint8")


class LogCatcher(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def diffusers_lora_pipe(family, path, targets, weight):
    """The pipeline with the file loaded by diffusers and scaled by `weight`; returns it with
    the warnings diffusers logged and, per target, the ratio of the delta diffusers applies to
    the one kohya/A1111 apply (1.0 where they agree)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    pipe = load_pipe(family)
    catcher = LogCatcher()
    log = logging.getLogger("diffusers")
    log.addHandler(catcher)
    try:
        pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name="lora")
        pipe.set_adapters(["lora"], adapter_weights=[weight])
    finally:
        log.removeHandler(catcher)
    ratios = {}
    for t in targets:
        mod = submodule(pipe, t)
        assert isinstance(mod, BaseTunerLayer), f"diffusers did not apply {t.prefix}"
        a = mod.lora_A["lora"].weight.detach()
        b = mod.lora_B["lora"].weight.detach()
        got = mod.scaling["lora"] * (b.flatten(1) @ a.flatten(1)).reshape(t.shape)
        want = delta(t, weight)
        ratio = float((got * want).sum() / (want * want).sum())
        assert torch.allclose(got, ratio * want, rtol=1e-4, atol=1e-7), t.prefix
        ratios[t.prefix] = ratio
    for comp in ("unet", "text_encoder", "text_encoder_2"):
        model = getattr(pipe, comp, None)
        if model is not None:
            n = sum(isinstance(m, BaseTunerLayer) for m in model.modules())
            assert n == sum(t.component == comp for t in targets), f"{comp}: {n} LoRA layers"
    return pipe, catcher.lines, ratios


def hand_merged_pipe(family, targets, weight):
    """The plain pipeline whose weights are the fixture's files with the LoRA merged in."""
    spec = FAMILIES[family]
    pipe = load_pipe(family)
    for comp in sorted({t.component for t in targets}):
        base = "model" if comp.startswith("text_encoder") else "diffusion_pytorch_model"
        name = f"{base}.{spec['variant']}.safetensors" if spec["variant"] else f"{base}.safetensors"
        sd = {k: v.float() for k, v in load_file(FIX / spec["folder"] / comp / name).items()}
        for t in targets:
            if t.component == comp:
                sd[t.tensor] = sd[t.tensor] + delta(t, weight)
        model = getattr(pipe, comp)
        model.load_state_dict({model_name(model, k): v for k, v in sd.items()}, strict=True)
    return pipe


def save_png(pixels, name):
    Image.fromarray(pixels).save(OUT / name, optimize=False)


def diff_stats(a, b):
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(d.mean()), int(d.max())


def saturated(p):
    return float(((p == 0) | (p == 255)).mean())


# ----------------------------------------------------------------------------------------
# The files


def sd1_kohya(pipe):
    unet = unet_attention_modules(pipe.unet)
    te = te_modules(pipe.text_encoder)
    no_alpha = {"mid_block.attentions.0.transformer_blocks.0.attn2.to_v", "text_model.encoder.layers.1.mlp.fc2"}
    targets = [Target("lora_unet_" + kohya_name(m), "unet", m, 4, None if m in no_alpha else 2.0) for m in unet]
    targets += [Target("lora_te_" + kohya_name(m), "text_encoder", m, 4, None if m in no_alpha else 2.0) for m in te]
    assert sum(t.alpha is None for t in targets) == 2
    return targets


def sd1_peft(pipe):
    unet = unet_attention_modules(pipe.unet, linears=UNET_ATTN_LINEARS[:8], proj=False)
    te = te_modules(pipe.text_encoder, kinds=TE_LINEARS[:4])
    return [Target("unet." + m, "unet", m, 8, None) for m in unet] + [
        Target("text_encoder." + m, "text_encoder", m, 8, None) for m in te
    ]


def sd1_locon(pipe):
    convs = unet_conv_modules(pipe.unet)
    # A few attention Linears too, as LoCon files carry both.
    few = [
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
        "down_blocks.1.attentions.1.transformer_blocks.0.attn2.to_k",
        "mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0",
        "up_blocks.2.attentions.2.transformer_blocks.0.ff.net.2",
    ]
    return [Target("lora_unet_" + kohya_name(m), "unet", m, 4, 4.0) for m in convs + few]


def sdxl_kohya(pipe):
    cfg = dict(pipe.unet.config)
    unet = unet_attention_modules(pipe.unet)
    targets = [Target("lora_unet_" + kohya_name(sgm_unet_name(m, cfg)), "unet", m, 4, 8.0) for m in unet]
    targets += [Target("lora_te1_" + kohya_name(m), "text_encoder", m, 4, 8.0) for m in te_modules(pipe.text_encoder)]
    targets += [
        Target("lora_te2_" + kohya_name(m), "text_encoder_2", m, 4, 8.0) for m in te_modules(pipe.text_encoder_2)
    ]
    return targets


def kohya_meta(name, base, module="networks.lora", dim=4, alpha=2.0, args=None):
    meta = {
        "ss_output_name": name,
        "ss_network_module": module,
        "ss_network_dim": str(dim),
        "ss_network_alpha": str(alpha),
        "ss_base_model_version": base,
    }
    if args:
        meta["ss_network_args"] = json.dumps(args)
    return meta


# Per file: family, layout, seed, gain, the multiplier of the second picture, how to build it.
# The gains are chosen so each LoRA at weight 1 changes the reference picture visibly
# (mean |difference| of ~10/255) without driving it into saturation.
SPECS = [
    dict(file="sd1-kohya.safetensors", family="sd1", layout="kohya", seed=101, gain=0.02, weight=-0.7),
    dict(file="sd1-peft.safetensors", family="sd1", layout="peft", seed=102, gain=0.02, weight=0.6),
    dict(file="sd1-locon.safetensors", family="sd1", layout="locon", seed=103, gain=0.05, weight=-0.7),
    dict(file="sdxl-kohya.safetensors", family="sdxl", layout="kohya-sgm", seed=104, gain=0.035, weight=0.6),
]


def build(spec):
    family, layout = spec["family"], spec["layout"]
    pipe = load_pipe(family)
    path = OUT / spec["file"]
    if layout == "kohya":
        targets = sd1_kohya(pipe)
        fill(targets, pipe, spec["seed"], spec["gain"])
        write_kohya(path, targets, torch.float16, torch.float32, kohya_meta("sd1-kohya", "sd_v1", alpha=2.0))
        read_back(path, targets, ".lora_down.weight", ".lora_up.weight")
    elif layout == "peft":
        targets = sd1_peft(pipe)
        fill(targets, pipe, spec["seed"], spec["gain"])
        write_peft_sd1(path, pipe, targets)
        read_back(path, targets, ".lora_A.weight", ".lora_B.weight")
    elif layout == "locon":
        targets = sd1_locon(pipe)
        fill(targets, pipe, spec["seed"], spec["gain"])
        args = {"algo": "locon", "conv_dim": "4", "conv_alpha": "4"}
        meta = kohya_meta("sd1-locon", "sd_v1", module="lycoris.kohya", alpha=4.0, args=args)
        write_kohya(path, targets, torch.float16, torch.float32, meta)
        read_back(path, targets, ".lora_down.weight", ".lora_up.weight")
    elif layout == "kohya-sgm":
        targets = sdxl_kohya(pipe)
        fill(targets, pipe, spec["seed"], spec["gain"])
        meta = kohya_meta("sdxl-kohya", "sdxl_base_v1-0", alpha=8.0)
        write_kohya(path, targets, torch.float16, torch.float16, meta)
        read_back(path, targets, ".lora_down.weight", ".lora_up.weight")
    else:
        raise ValueError(layout)
    return targets


def make_nomatch():
    rng = np.random.default_rng(105)
    sd = {}
    for prefix, (o, i) in {
        "lora_unet_not_a_block_0_to_q": (32, 32),
        "lora_unet_down_blocks_9_attentions_0_proj_in": (32, 32),
        "lora_te_text_model_encoder_layers_99_self_attn_q_proj": (32, 32),
    }.items():
        sd[prefix + ".lora_down.weight"] = torch.from_numpy(rng.standard_normal((4, i)).astype(np.float32)).half()
        sd[prefix + ".lora_up.weight"] = torch.from_numpy(rng.standard_normal((o, 4)).astype(np.float32)).half()
        sd[prefix + ".alpha"] = torch.tensor(4.0)
    path = OUT / "nomatch.safetensors"
    save_sorted(sd, path, kohya_meta("nomatch", "sd_v1", alpha=4.0))
    return path, sorted({k.split(".")[0] for k in sd})


def weight_tag(w):
    return f"{w:+.1f}".replace("+", "").replace("-", "neg")


def reference_record(png, weight, how):
    return dict(
        png=png,
        weight=weight,
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        steps=STEPS,
        guidance=GUIDANCE,
        width=WIDTH,
        height=HEIGHT,
        latents=LATENTS,
        scheduler="default",
        reference=how,
    )


def main():
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in list(OUT.glob("*.png")) + list(OUT.glob("*.safetensors")):
        old.unlink()

    baselines, base_pixels = [], {}
    for family, spec in FAMILIES.items():
        pixels = render(load_pipe(family))
        png = f"{family}-baseline.png"
        save_png(pixels, png)
        base_pixels[family] = pixels
        rec = reference_record(png, 0.0, "diffusers, no LoRA")
        del rec["weight"]
        baselines.append(dict(family=family, model=spec["folder"], **rec))
        # The same settings as tests/fixtures/reference/<family>/default-sq-g7.png: same picture.
        old = np.asarray(Image.open(FIX / "reference" / family / "default-sq-g7.png"))
        print(f"{png}: vs reference/{family}/default-sq-g7.png max diff {diff_stats(pixels, old)[1]}", flush=True)

    records, report = [], []
    for spec in SPECS:
        family = spec["family"]
        targets = build(spec)
        path = OUT / spec["file"]
        refs = []
        for w in (1.0, spec["weight"]):
            png = f"{path.stem}-{weight_tag(w)}.png"
            dpipe, warnings, ratios = diffusers_lora_pipe(family, path, targets, w)
            off = {p: r for p, r in ratios.items() if abs(r - 1) > 1e-4}
            for p, r in sorted(off.items()):
                print(f"    diffusers applies {p} x{r:.4g} of what kohya/A1111 apply", flush=True)
            d_pixels = render(dpipe)
            h_pixels = render(hand_merged_pipe(family, targets, w))
            mean_d, max_d = diff_stats(d_pixels, h_pixels)
            if off:
                # The rest of diffusers' reading still has to agree: give those targets kohya's
                # scale in diffusers' own LoRA layers and compare again.
                for t in targets:
                    if t.prefix in off:
                        submodule(dpipe, t).scaling["lora"] /= off[t.prefix]
                fixed_mean, fixed_max = diff_stats(render(dpipe), h_pixels)
                print(
                    f"    diffusers as loaded vs hand merge: mean {mean_d:.3f} max {max_d}; with kohya's scale "
                    f"on those targets: mean {fixed_mean:.3f} max {fixed_max}",
                    flush=True,
                )
                assert fixed_max <= AGREE_MAX, f"{png}: diffusers (rescaled) vs hand merge differ by {fixed_max}"
                mean_d, max_d = fixed_mean, fixed_max
                # diffusers scales these targets otherwise than kohya/A1111: the hand merge is
                # the reference (kohya's semantics), diffusers' own picture is only reported.
                pixels = h_pixels
                how = (
                    "hand merge into the fixture's weights (W + w*alpha/rank*up@down; alpha = rank where the "
                    "file has none, as kohya and A1111 read it), then the plain diffusers pipeline; diffusers "
                    "load_lora_weights applies " + ", ".join(f"{p} x{r:.3g}" for p, r in sorted(off.items()))
                )
            else:
                assert max_d <= AGREE_MAX, f"{png}: diffusers vs hand merge differ by {max_d}"
                pixels = d_pixels
                how = "diffusers load_lora_weights"
            del dpipe
            save_png(pixels, png)
            mean_b, max_b = diff_stats(pixels, base_pixels[family])
            refs.append(reference_record(png, w, how))
            line = (
                f"{png:26} vs baseline mean {mean_b:5.2f} max {max_b:3d} | diffusers vs hand merge "
                f"mean {mean_d:.3f} max {max_d} | saturated {saturated(pixels):.3f} "
                f"(baseline {saturated(base_pixels[family]):.3f}) | {how[:40]}"
            )
            print(line, flush=True)
            report.append(line)
            for msg in warnings:
                print(f"    diffusers warned: {msg[:300]}", flush=True)
        with safe_open(path, "pt") as f:
            dtypes = sorted({str(f.get_tensor(k).dtype).removeprefix("torch.") for k in f.keys()})
        records.append(
            dict(
                file=spec["file"],
                family=family,
                layout=spec["layout"],
                model=FAMILIES[family]["folder"],
                addnet_hash=addnet_hash(path),
                dtypes=dtypes,
                baseline=f"{family}-baseline.png",
                targets=[
                    dict(prefix=t.prefix, component=t.component, tensor=t.tensor, rank=t.rank, alpha=t.alpha)
                    for t in targets
                ],
                references=refs,
            )
        )

    nomatch, prefixes = make_nomatch()
    out = dict(
        loras=records,
        baselines=baselines,
        nomatch=dict(file=nomatch.name, family="sd1", model="sd1-tiny", addnet_hash=addnet_hash(nomatch), prefixes=prefixes),
    )
    (OUT / "cases.json").write_text(json.dumps(out, indent=2) + "\n")
    # Every file loads with safetensors' own loader; the hash is over the bytes after the header.
    for rec in records + [out["nomatch"]]:
        path = OUT / rec["file"]
        assert len(load_file(path)) > 0
        with open(path, "rb") as f:
            f.seek(8 + int.from_bytes(f.read(8), "little"))
            assert hashlib.sha256(f.read()).hexdigest().startswith(rec["addnet_hash"])
    for p in sorted(OUT.iterdir()):
        print(f"{p.name:30} {p.stat().st_size:8d} bytes", flush=True)


if __name__ == "__main__":
    sys.exit(main())
