#!/usr/bin/env python3
"""Time the same measurements as `lantern bench` with OpenVINO (CPU plugin, fp32) on the same
diffusers model folder and thread count; prints one JSON line per measurement with
"impl": "openvino". This is the engine FastSD CPU runs (through optimum-intel).

    python3 tools/bench_openvino.py --model DIR --threads 2 --only unet512 [--repeats 3] [--steps 20]
    python3 tools/bench_openvino.py --model DIR --check unet256   # OpenVINO vs diffusers, one input

Conversion. The diffusers UNet, VAE decoder (post_quant_conv + decoder) and CLIP text encoder
are converted with `openvino.convert_model` (PyTorch frontend, traced) and saved as IR with
`compress_to_fp16=False` (save_model's default would halve the weights), under
BENCH_CACHE/openvino/<folder>-<hash>/ (BENCH_CACHE defaults to .bench-cache). Conversion runs
once, in a child process, and is reported on its own line ("name": "convert", not a
measurement). The UNet and VAE IRs keep H and W open; before compiling, each is reshaped to
the static shape of the measurement ([2,4,H/8,W/8] + timestep [1] + context [2,77,768] for the
UNet, [1,4,64,64] for the VAE, [1,77] token ids for CLIP) - what optimum-intel's
`reshape(...)` + `compile()` does for FastSD CPU - so the CPU plugin compiles a fully static
network. "load" is reading the IR + reshaping + compiling what the measurement needs.

Compile config: INFERENCE_PRECISION_HINT=f32 (essential: on a CPU with AVX512_BF16 or AMX the
CPU plugin's default is bf16; on this machine it reported bfloat16), INFERENCE_NUM_THREADS=N,
NUM_STREAMS=1, PERFORMANCE_HINT=LATENCY (ENABLE_CPU_PINNING stays at its default, on). The values the compiled model reports back are put in
each JSON line ("ov_threads", "ov_streams", "ov_precision"), with "cpu_util": process CPU time
over wall time during the timed runs (about N when N threads really work).

Measures: clip (prompt and negative prompt, each [1,77] as diffusers' encode_prompt and
optimum do, tokenisation included), unet256 / unet512 (one UNet call, batch 2 = CFG, t=500),
vae512 (decode of 1x4x64x64 latents), gen512 (everything a user waits for after load: tokenise
+ CLIP x2, the folder's own scheduler - PNDM for .bench-cache/sd15, 20 steps = 21 UNet calls
as in diffusers - CFG 7.5, VAE decode, image to [0,1] float array like output_type="np").

ISA. `ISA=avx2` in the environment (or ONEDNN_MAX_CPU_ISA=AVX2 set by the caller) makes this
script set ONEDNN_MAX_CPU_ISA=AVX2 and OV_CPU_MAX_ISA=AVX2 before openvino is imported (both
are needed). What that does in the openvino 2026.4.1 wheel, checked on an AVX-512 EPYC (each
JSON line's "kernels" field counts the ISA named in the compiled runtime model's
primitiveType, so every run shows what it used):
  * ONEDNN_MAX_CPU_ISA caps oneDNN inside the CPU plugin: convolutions go from
    brgconv_avx512_* to brgconv_avx2_*, brgemm FullyConnected, Eltwise and the fused
    Subgraph (snippets, incl. attention) kernels from jit_avx512 to jit_avx2.
  * OV_CPU_MAX_ISA caps the plugin's own ISA queries (ov::with_cpu_x86_*; added as a
    debug-caps knob by openvino PR #36980, and it does take effect in this release wheel,
    see openvino PR #38257): without it MVN (the GroupNorms) and
    Interpolate (the upsamplers) stay jit_avx512_f32 under ONEDNN_MAX_CPU_ISA alone, and the
    CPU keeps advertising BF16 (OPTIMIZATION_CAPABILITIES ['BF16', 'WINOGRAD', 'FP32', ...]
    -> ['FP32', 'INT8', 'BIN', 'EXPORT_IMPORT'] with it; default precision bf16 -> f32).
  * Not capped by anything: FullyConnected layers without fused post-ops run on MLAS
    ("gemm_mlas_f32", 150 of the UNet's nodes), whose SGEMM picks its kernel from CPUID. perf
    record of a 2048^2 MatMul with both variables set: the hot samples sit at the same offsets
    of libopenvino_intel_cpu_plugin.so as without them, on `vfmadd231ps %zmm..` (the AVX-512F
    kernel). PERF_COUNT on a 256^2 UNet call under the caps: ~23% of the time in gemm_mlas
    (0.82 s, against 0.87 s uncapped - contended machine - while the convolutions slowed).
  So under the environment caps alone OpenVINO runs AVX2 everywhere except its MLAS GEMMs
  (roughly a quarter of a UNet step), which stay AVX-512; no run-time switch reaches those.
  What does: hiding AVX-512 from `cpuid` itself. tools/bench_compare.sh ISA=avx2 preloads
  tools/hide_avx512.c (CPUID faulting) where the machine allows it; perf record of the same
  2048^2 MatMul under it: the hot samples move to the AVX2 kernel (`vfmadd231ps %ymm..`,
  0x3430d66 in this wheel's plugin, against `%zmm..` at 0x3438ac9 without it), and the
  plugin's OPTIMIZATION_CAPABILITIES lose BF16.
  Correctness under the caps (openvino PR #38189 reports wrong results when the two caps
  disagree): --check unet256 on the full-size weights, max abs diff to diffusers 5.6e-6
  (native 3.9e-6; outputs up to 1.5).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

if os.environ.get("ISA", "").lower() == "avx2" or os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() == "AVX2":
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    os.environ.setdefault("OV_CPU_MAX_ISA", "AVX2")

import numpy as np

from bench_common import MEASURES, NEGATIVE, PROMPT, bench_cache, best_of, cpu_seconds, reporter

report = reporter("openvino")


def ir_dir(model):
    model = Path(model).resolve()
    cache = bench_cache()
    tag = hashlib.sha1(str(model).encode()).hexdigest()[:8]
    return cache / "openvino" / f"{model.name}-{tag}"


def stamp_of(model):
    """What the IR was made from: openvino version and the weight files' sizes and mtimes."""
    import openvino as ov

    files = sorted(p for p in Path(model).rglob("*.safetensors"))
    return {"openvino": ov.__version__, "files": [[str(p.relative_to(model)), p.stat().st_size, p.stat().st_mtime] for p in files]}


# ------------------------------------------------------------------------------------------
# conversion (child process: torch and the traced graphs never enter the measured process)


def convert(model, out):
    import openvino as ov
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.set_grad_enabled(False)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    class UNet(torch.nn.Module):
        def __init__(self, unet):
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, context):
            return self.unet(sample, timestep, context, return_dict=False)[0]

    class Decoder(torch.nn.Module):
        def __init__(self, vae):
            super().__init__()
            self.vae = vae

        def forward(self, z):
            return self.vae.decode(z, return_dict=False)[0]

    class Text(torch.nn.Module):
        def __init__(self, te):
            super().__init__()
            self.te = te

        def forward(self, ids):
            return self.te(ids, return_dict=False)[0]

    unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet", torch_dtype=torch.float32).eval()
    c, d = unet.config.in_channels, unet.config.cross_attention_dim
    example = (torch.randn(2, c, 32, 32), torch.tensor([500.0]), torch.randn(2, 77, d))
    m = ov.convert_model(UNet(unet), example_input=example,
                         input=[([2, c, -1, -1], ov.Type.f32), ([1], ov.Type.f32), ([2, 77, d], ov.Type.f32)])
    ov.save_model(m, out / "unet.xml", compress_to_fp16=False)
    del m, unet

    vae = AutoencoderKL.from_pretrained(model, subfolder="vae", torch_dtype=torch.float32).eval()
    lc = vae.config.latent_channels
    m = ov.convert_model(Decoder(vae), example_input=(torch.randn(1, lc, 32, 32),), input=[([1, lc, -1, -1], ov.Type.f32)])
    ov.save_model(m, out / "vae_decoder.xml", compress_to_fp16=False)
    del m, vae

    te = CLIPTextModel.from_pretrained(model, subfolder="text_encoder", torch_dtype=torch.float32).eval()
    m = ov.convert_model(Text(te), example_input=(torch.ones(1, 77, dtype=torch.int64),), input=[([1, 77], ov.Type.i64)])
    ov.save_model(m, out / "text_encoder.xml", compress_to_fp16=False)
    del m, te

    (out / "stamp.json").write_text(json.dumps(stamp_of(model)))
    report("convert", time.perf_counter() - started)


def ensure_ir(model):
    out = ir_dir(model)
    stamp = out / "stamp.json"
    if stamp.exists() and json.loads(stamp.read_text()) == json.loads(json.dumps(stamp_of(model))):
        return out
    print(f"== converting {model} to OpenVINO IR in {out} (once)", file=sys.stderr, flush=True)
    stamp.unlink(missing_ok=True)
    subprocess.run([sys.executable, __file__, "--model", str(model), "--convert-only"], check=True)
    return out


# ------------------------------------------------------------------------------------------
# the measured process


def kernel_summary(compiled):
    """Counts of the ISA named in each executed node's primitiveType (e.g. brgconv_avx2_f32)."""
    isa = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        if rt["layerType"].astype(str) in ("Const", "Input", "Output", "Reshape"):
            continue
        p = rt["primitiveType"].astype(str)
        kind = next((k for k in ("amx", "avx512", "avx2", "mlas", "sse", "uni", "ref") if k in p), "other")
        isa[kind] += 1
    return " ".join(f"{k}:{v}" for k, v in sorted(isa.items()))


class Engine:
    def __init__(self, model, threads):
        import openvino as ov

        self.ov = ov
        self.model = Path(model)
        self.dir = ensure_ir(model)
        self.core = ov.Core()
        self.config = {
            "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
        }
        self.compiled = {}

    def compile(self, name, shapes):
        key = (name, tuple(tuple(s) for s in shapes))
        if key not in self.compiled:
            m = self.core.read_model(self.dir / f"{name}.xml")
            m.reshape({i: s for i, s in enumerate(shapes)})
            cm = self.core.compile_model(m, "CPU", self.config)
            self.compiled[key] = (cm, cm.create_infer_request())
        return self.compiled[key]

    def info(self, name, shapes):
        cm, _ = self.compile(name, shapes)
        precision = cm.get_property("INFERENCE_PRECISION_HINT")
        return dict(ov_threads=str(cm.get_property("INFERENCE_NUM_THREADS")), ov_streams=str(cm.get_property("NUM_STREAMS")),
                    ov_precision=precision.to_string() if hasattr(precision, "to_string") else str(precision),
                    kernels=kernel_summary(cm))

    def run(self, name, shapes, *inputs):
        _, req = self.compile(name, shapes)
        req.infer({i: np.ascontiguousarray(x) for i, x in enumerate(inputs)}, share_inputs=True)
        return req.get_output_tensor(0).data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="all")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--save", metavar="FILE", help="write the gen512 picture here (.npy: the float array)")
    ap.add_argument("--prepare", action="store_true", help="only make sure the converted model is in the cache")
    ap.add_argument("--convert-only", action="store_true", help="(internal) write the IR cache and exit")
    ap.add_argument("--check", choices=["unet256", "unet512", "vae512", "clip"],
                    help="compare OpenVINO's output with diffusers' (PyTorch) on one input instead of timing")
    args = ap.parse_args()
    if args.only not in ("all",) + MEASURES:
        ap.error(f"unknown measurement {args.only!r}")
    if args.prepare:
        ensure_ir(args.model)
        return 0
    if args.convert_only:
        return convert(args.model, ir_dir(args.model))
    if args.check:
        args.only = args.check

    import torch

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    from transformers import CLIPTokenizer

    model = Path(args.model)
    ucfg = json.loads((model / "unet/config.json").read_text())
    vcfg = json.loads((model / "vae/config.json").read_text())
    C, D, LC = ucfg["in_channels"], ucfg["cross_attention_dim"], vcfg["latent_channels"]
    scaling = vcfg.get("scaling_factor", 0.18215)
    wants = lambda n: args.only in ("all", n)

    t = time.perf_counter()
    eng = Engine(model, args.threads)
    tok = CLIPTokenizer.from_pretrained(model, subfolder="tokenizer")
    text_shape = [[1, 77]]
    unet_shape = lambda side: [[2, C, side // 8, side // 8], [1], [2, 77, D]]
    vae_shape = [[1, LC, 64, 64]]
    needed = []
    if wants("clip") or wants("gen512") or wants("unet256") or wants("unet512"):
        needed.append(("text_encoder", text_shape))
    for name, side in (("unet256", 256), ("unet512", 512)):
        if wants(name) or (name == "unet512" and wants("gen512")):
            needed.append(("unet", unet_shape(side)))
    if wants("vae512") or wants("gen512"):
        needed.append(("vae_decoder", vae_shape))
    for name, shapes in needed:
        eng.compile(name, shapes)
    report("load", time.perf_counter() - t)

    def encode(text):
        ids = tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="np").input_ids
        return eng.run("text_encoder", text_shape, ids.astype(np.int64)).copy()

    if args.check:
        return check(args, eng, encode, unet_shape, vae_shape, text_shape, C, LC, scaling)

    if wants("clip"):
        best, util = best_of(args.repeats, lambda: (encode(PROMPT), encode(NEGATIVE)))
        report("clip", best, cpu_util=f"{util:.2f}", **eng.info("text_encoder", text_shape))

    context = np.concatenate([encode(NEGATIVE), encode(PROMPT)])
    rng = np.random.default_rng(0)
    for name, side in (("unet256", 256), ("unet512", 512)):
        if wants(name):
            shp = unet_shape(side)
            x = rng.standard_normal((2, C, side // 8, side // 8), dtype=np.float32)
            ts = np.array([500.0], np.float32)
            best, util = best_of(args.repeats, lambda: float(eng.run("unet", shp, x, ts, context).sum()))
            report(name, best, batch="2", cpu_util=f"{util:.2f}", **eng.info("unet", shp))

    if wants("vae512"):
        z = rng.standard_normal((1, LC, 64, 64), dtype=np.float32)
        best, util = best_of(args.repeats, lambda: eng.run("vae_decoder", vae_shape, z / scaling))
        report("vae512", best, cpu_util=f"{util:.2f}", **eng.info("vae_decoder", vae_shape))

    if wants("gen512"):
        import diffusers

        scfg = json.loads((model / "scheduler/scheduler_config.json").read_text())
        sched = getattr(diffusers, scfg["_class_name"]).from_pretrained(model, subfolder="scheduler")
        shp = unet_shape(512)

        def generate(steps, guidance):
            g = torch.Generator().manual_seed(1)
            cpu, t = cpu_seconds(), time.perf_counter()
            ctx = np.concatenate([encode(NEGATIVE), encode(PROMPT)])
            sched.set_timesteps(steps)
            latents = torch.randn((1, C, 64, 64), generator=g) * sched.init_noise_sigma
            calls = 0
            for step_t in sched.timesteps:
                inp = sched.scale_model_input(torch.cat([latents] * 2), step_t)
                noise = torch.from_numpy(eng.run("unet", shp, inp.numpy(), np.array([float(step_t)], np.float32), ctx).copy())
                uncond, cond = noise.chunk(2)
                latents = sched.step(uncond + guidance * (cond - uncond), step_t, latents).prev_sample
                calls += 1
            image = eng.run("vae_decoder", vae_shape, (latents / scaling).numpy())
            image = np.clip(image / 2 + 0.5, 0, 1).transpose(0, 2, 3, 1).copy()
            wall = time.perf_counter() - t
            if args.save:
                if args.save.endswith(".npy"):
                    np.save(args.save, image)
                else:
                    from PIL import Image

                    Image.fromarray((image[0] * 255).round().astype(np.uint8)).save(args.save)
            return wall, calls, (cpu_seconds() - cpu) / wall

        total, calls, util = generate(args.steps, 7.5)
        report("gen512", total, steps=args.steps, unet_calls=calls, scheduler=type(sched).__name__, cpu_util=f"{util:.2f}")


def check(args, eng, encode, unet_shape, vae_shape, text_shape, C, LC, scaling):
    """OpenVINO vs diffusers (PyTorch fp32) on one random input: max abs and relative error."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    rng = np.random.default_rng(0)
    name = args.check
    if name == "clip":
        ref_model = CLIPTextModel.from_pretrained(args.model, subfolder="text_encoder").eval()
        ov_out = encode(PROMPT)
        from transformers import CLIPTokenizer

        tok = CLIPTokenizer.from_pretrained(args.model, subfolder="tokenizer")
        ids = tok(PROMPT, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        ref = ref_model(ids).last_hidden_state.numpy()
        shapes, comp = text_shape, "text_encoder"
    elif name.startswith("unet"):
        side = int(name[4:])
        ref_model = UNet2DConditionModel.from_pretrained(args.model, subfolder="unet").eval()
        context = np.concatenate([encode(NEGATIVE), encode(PROMPT)])
        x = rng.standard_normal((2, C, side // 8, side // 8), dtype=np.float32)
        shapes, comp = unet_shape(side), "unet"
        ov_out = eng.run(comp, shapes, x, np.array([500.0], np.float32), context).copy()
        ref = ref_model(torch.from_numpy(x), 500, torch.from_numpy(context)).sample.numpy()
    else:
        ref_model = AutoencoderKL.from_pretrained(args.model, subfolder="vae").eval()
        z = rng.standard_normal((1, LC, 64, 64), dtype=np.float32) / scaling
        shapes, comp = vae_shape, "vae_decoder"
        ov_out = eng.run(comp, shapes, z).copy()
        ref = ref_model.decode(torch.from_numpy(z)).sample.numpy()
    diff = np.abs(ov_out - ref)
    print(json.dumps(dict(check=name, max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
                          ref_max_abs=float(np.abs(ref).max()), ref_std=float(ref.std()),
                          onednn_max_cpu_isa=os.environ.get("ONEDNN_MAX_CPU_ISA", ""), **eng.info(comp, shapes))), flush=True)


if __name__ == "__main__":
    sys.exit(main())
