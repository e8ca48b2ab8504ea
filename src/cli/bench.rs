//! `lantern bench`: times the parts of a generation on a model folder and prints one JSON
//! line per measurement, so `tools/bench_compare.sh` can set them beside diffusers' numbers
//! for the same weights. Wall-clock figures belong here, never in tests.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Result, bail};
use candle_core::{DType, Device, Tensor};
use clap::Args;

use crate::device::{self, DeviceChoice, Precision};
use crate::model::lora::LoraChoice;
use crate::model::{LoadOptions, LoadedModel};
use crate::pipeline::prompt::{encode_prompt, encode_prompts};
use crate::pipeline::{self, Request};
use crate::recipe::Recipe;
use crate::schedulers::SamplerKind;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A diffusers model folder (e.g. the one tools/bench_weights.py writes).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Which measurement: load, clip, unet256, unet512, vae512, vae1024, gen512, turbo512,
    /// lora (needs --lora), or all.
    #[arg(long, default_value = "all")]
    pub only: String,
    /// A LoRA file to time merging, switching and removing (e.g. the one
    /// tools/make_bench_lora.py writes).
    #[arg(long, value_name = "FILE")]
    pub lora: Option<PathBuf>,
    /// Timed repetitions (the best is reported) after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    #[arg(long, default_value_t = 20)]
    pub steps: u32,
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub dtype: Precision,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

const PROMPT: &str = "a lighthouse on a cliff at dusk, dramatic sky, oil painting, highly detailed";
const NEGATIVE: &str = "blurry, low quality";

pub fn run(args: BenchArgs) -> Result<()> {
    let device = device::open(args.device)?;
    let options = LoadOptions {
        dtype: args.dtype.dtype(),
        device: device.clone(),
        ..LoadOptions::default()
    };
    let started = Instant::now();
    let model = LoadedModel::load(&args.model, options, &mut |_| {})?;
    report("load", started.elapsed().as_secs_f64(), &[]);
    let all = args.only == "all";
    let wants = |name: &str| all || args.only == name;
    if !all
        && ![
            "load", "clip", "unet256", "unet512", "vae512", "vae1024", "gen512", "turbo512", "lora",
        ]
        .contains(&args.only.as_str())
    {
        bail!("unknown measurement `{}`", args.only);
    }
    if let Some(file) = &args.lora
        && wants("lora")
    {
        lora_switching(&model, file)?;
    }
    if wants("clip") {
        // What a guided generation encodes: the prompt and the negative prompt (in one batch,
        // as the pipeline does).
        let t = best_of(args.repeats, || {
            encode_prompts(&model, &[NEGATIVE, PROMPT])?;
            Ok(())
        })?;
        report("clip", t, &[]);
    }
    for (name, side) in [("unet256", 256usize), ("unet512", 512)] {
        if wants(name) {
            let t = unet_step(&model, side, args.repeats, &device)?;
            report(name, t, &[("batch", "2".into())]);
        }
    }
    if wants("vae512") {
        let z =
            Tensor::randn(0f32, 1f32, (1, model.unet_input_channels(), 64, 64), &Device::Cpu)?.to_device(&device)?;
        let t = best_of(args.repeats, || {
            pipeline::decode(&model, &z)?;
            Ok(())
        })?;
        report("vae512", t, &[]);
    }
    if wants("vae1024") {
        // A 1024² decode goes through the tiled path; its peak memory is the point.
        let z =
            Tensor::randn(0f32, 1f32, (1, model.unet_input_channels(), 128, 128), &Device::Cpu)?.to_device(&device)?;
        let started = Instant::now();
        pipeline::decode(&model, &z)?;
        report("vae1024", started.elapsed().as_secs_f64(), &[]);
    }
    if wants("gen512") {
        let t = generation(&model, args.steps, 7.5, SamplerKind::Default)?;
        report("gen512", t, &[("steps", args.steps.to_string())]);
    }
    if wants("turbo512") {
        // SD-Turbo's fast path: one step, no guidance, batch 1.
        let t = generation(&model, 1, 0.0, SamplerKind::Euler)?;
        let vae = best_of(1, || {
            let z = Tensor::zeros((1, model.unet_input_channels(), 64, 64), DType::F32, &device)?;
            pipeline::decode(&model, &z)?;
            Ok(())
        })?;
        report("turbo512", t, &[("vae_share", format!("{:.2}", vae / t))]);
    }
    Ok(())
}

/// Times what a designer waits for when the prompt's LoRAs change: the first merge (reading
/// and hashing the file), a change of weight, taking it out, and merging it again.
fn lora_switching(model: &LoadedModel, file: &std::path::Path) -> Result<()> {
    let choice = |weight: f64| LoraChoice {
        name: crate::pipeline::loras::lora_name(file),
        path: file.to_path_buf(),
        te: weight,
        unet: weight,
    };
    for (name, set) in [
        ("lora_first", vec![choice(1.0)]),
        ("lora_reweight", vec![choice(0.5)]),
        ("lora_remove", vec![]),
        ("lora_again", vec![choice(1.0)]),
    ] {
        let started = Instant::now();
        let applied = model.lora.apply(&set)?;
        let layers = applied.first().map_or(0, |a| a.layers);
        report(name, started.elapsed().as_secs_f64(), &[("layers", layers.to_string())]);
    }
    model.lora.apply(&[])?;
    Ok(())
}

fn generation(model: &LoadedModel, steps: u32, guidance: f64, sampler: SamplerKind) -> Result<f64> {
    let request = Request::new(Recipe {
        prompt: PROMPT.into(),
        negative_prompt: NEGATIVE.into(),
        steps,
        guidance,
        width: 512,
        height: 512,
        seed: 1,
        sampler,
        ..Recipe::default()
    });
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    pipeline::generate(model, &request, &cancel, &mut |_| {})?;
    Ok(started.elapsed().as_secs_f64())
}

fn unet_step(model: &LoadedModel, side: usize, repeats: usize, device: &Device) -> Result<f64> {
    let lat = side / model.vae_scale_factor();
    let x = Tensor::randn(0f32, 1f32, (2, model.unet_input_channels(), lat, lat), &Device::Cpu)?.to_device(device)?;
    let a = encode_prompt(model, PROMPT)?;
    let b = encode_prompt(model, NEGATIVE)?;
    let context = Tensor::cat(&[&b.context, &a.context], 0)?;
    let pooled = match (&b.pooled, &a.pooled) {
        (Some(b), Some(a)) => Some(Tensor::cat(&[b, a], 0)?),
        _ => None,
    };
    let s = side as f32;
    let time_ids = Tensor::from_vec([s, s, 0.0, 0.0, s, s].repeat(2), (2, 6), device)?;
    best_of(repeats, || {
        let tt = pooled.as_ref().map(|p| crate::model::unet::TextTimeConditioning {
            text_embeds: p,
            time_ids: &time_ids,
        });
        model
            .unet
            .forward(&x, 500.0, &context, tt)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()?;
        Ok(())
    })
}

/// One warm-up, then the fastest of `repeats` runs.
fn best_of(repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn report(name: &str, seconds: f64, extra: &[(&str, String)]) {
    let mut line = serde_json::json!({
        "impl": "lantern",
        "name": name,
        "seconds": seconds,
        "peak_rss_bytes": peak_rss_bytes(),
        // What the figure was measured with: the pool size and the kernels' CPU level.
        "threads": rayon::current_num_threads(),
        "cpu": crate::model::cpu::simd::cpu_level().name(),
    });
    for (k, v) in extra {
        line[*k] = serde_json::Value::String(v.clone());
    }
    println!("{line}");
}

/// The process's peak resident memory (Linux `VmHWM`), 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
