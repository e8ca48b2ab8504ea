//! What TAESD costs and saves, as JSON lines (one per measurement), like `lantern bench`:
//!
//!     nice -n 19 cargo run --release --example bench_taesd -- [--model DIR] [--repeats N] [--steps N]
//!
//! - `taesd_decode512` / `taesd_decode1024`: a full-size TAESD (the released architecture with
//!   random weights, from `tests/fixtures/taesd/full_size_layout.json`) decoding 64×64 and
//!   128×128 latents: one live preview at 512² and 1024²; `taesd_encode512` the encoder;
//!   `linear_preview512` the fallback preview;
//! - with `--model DIR` (a diffusers folder, e.g. `.bench-cache/sd15` from
//!   `tools/bench_weights.py`): `vae_decode512` the model's VAE on the same latents;
//!   `turbo512` / `turbo512_draft` a 512² generation as SD-Turbo runs it (one Euler step,
//!   guidance 0) decoded by the VAE and by the TAESD (Draft decode); `steps_previews_off` /
//!   `steps_previews_taesd` a `--steps` generation (guidance 7.5) without previews and with
//!   TAESD previews, whose difference per step is the preview's cost inside a real run.
//!
//! Random weights give noise pictures, which is all a timing needs. The best of `--repeats`
//! runs after one warm-up is reported: `ms` wall-clock, and `cpu_ms` the process's CPU time
//! (user + system, all threads) in its best run — on a machine shared with other work the wall
//! clock stretches with whatever else runs, while the CPU time stays what the work costs
//! (divided by the threads it is what the wall clock would be on an idle machine, if the
//! threads were always busy).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use lantern::model::taesd;
use lantern::model::{LoadOptions, LoadedModel, PipelineKind};
use lantern::pipeline::{self, Request};
use lantern::recipe::Recipe;
use lantern::schedulers::SamplerKind;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Args {
    model: Option<PathBuf>,
    repeats: usize,
    steps: u32,
}

fn args() -> Result<Args> {
    let mut out = Args {
        model: None,
        repeats: 3,
        steps: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--model" => out.model = Some(PathBuf::from(value()?)),
            "--repeats" => out.repeats = value()?.parse()?,
            "--steps" => out.steps = value()?.parse()?,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    Ok(out)
}

/// This process's CPU time so far (user + system, every thread), in seconds.
fn cpu_time() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Wall-clock and CPU seconds of one measurement.
#[derive(Clone, Copy)]
struct Timing {
    wall: f64,
    cpu: f64,
}

fn report(name: &str, t: Timing, extra: &[(&str, String)]) {
    let mut line = format!(
        "{{\"name\":\"{name}\",\"ms\":{:.1},\"cpu_ms\":{:.1}",
        t.wall * 1e3,
        t.cpu * 1e3
    );
    for (k, v) in extra {
        line.push_str(&format!(",\"{k}\":{v}"));
    }
    println!("{line}}}");
}

fn best_of(repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    f()?;
    let mut best = Timing {
        wall: f64::INFINITY,
        cpu: f64::INFINITY,
    };
    for _ in 0..repeats.max(1) {
        let (t, c) = (Instant::now(), cpu_time());
        f()?;
        best.wall = best.wall.min(t.elapsed().as_secs_f64());
        best.cpu = best.cpu.min(cpu_time() - c);
    }
    Ok(best)
}

/// The released TAESD's layout with He-scaled random weights, written as a diffusers folder.
fn full_size_taesd(dir: &Path) -> Result<PathBuf> {
    #[derive(serde::Deserialize)]
    struct Layout {
        config: serde_json::Value,
        tensors: HashMap<String, Vec<usize>>,
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layout: Layout = serde_json::from_str(&std::fs::read_to_string(
        root.join("tests/fixtures/taesd/full_size_layout.json"),
    )?)?;
    let folder = dir.join("taesd");
    std::fs::create_dir_all(&folder)?;
    std::fs::write(folder.join("config.json"), layout.config.to_string())?;
    let mut tensors = HashMap::new();
    for (name, shape) in &layout.tensors {
        let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
        let std = (2.0 / fan_in as f64).sqrt() as f32 * 0.7;
        tensors.insert(name.clone(), Tensor::randn(0f32, std, shape.as_slice(), &Device::Cpu)?);
    }
    candle_core::safetensors::save(&tensors, folder.join("diffusion_pytorch_model.safetensors"))?;
    Ok(folder)
}

fn generation(model: &LoadedModel, steps: u32, guidance: f64, draft: bool, previews: bool) -> Result<()> {
    let request = Request {
        previews,
        ..Request::new(Recipe {
            prompt: "a lighthouse on a cliff at dusk, dramatic sky, oil painting".into(),
            negative_prompt: "blurry, low quality".into(),
            steps,
            guidance,
            width: 512,
            height: 512,
            seed: 1,
            sampler: SamplerKind::Euler,
            draft_decode: draft,
            ..Recipe::default()
        })
    };
    let cancel = AtomicBool::new(false);
    let mut previews_made = 0;
    pipeline::generate(model, &request, &cancel, &mut |e| {
        if let pipeline::Event::Preview { .. } = e {
            previews_made += 1;
        }
    })?;
    if previews {
        eprintln!("{previews_made} previews in {steps} steps");
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = args()?;
    let tmp = tempfile::tempdir()?;
    let folder = full_size_taesd(tmp.path())?;
    let cpu = Device::Cpu;
    let decoder = taesd::load_decoder(&folder, DType::F32, &cpu)?;
    let encoder = taesd::load_encoder(&folder, DType::F32, &cpu)?;
    let threads = rayon::current_num_threads().to_string();
    for (name, side) in [("taesd_decode512", 64usize), ("taesd_decode1024", 128)] {
        let z = Tensor::randn(0f32, 1f32, (1, 4, side, side), &cpu)?;
        let t = best_of(args.repeats, || {
            pipeline::to_rgb8(&decoder.decode_latents(&z)?)?;
            Ok(())
        })?;
        report(name, t, &[("threads", threads.clone())]);
    }
    let image = Tensor::rand(-1f32, 1f32, (1, 3, 512, 512), &cpu)?;
    let t = best_of(args.repeats, || {
        encoder.encode(&image)?;
        Ok(())
    })?;
    report("taesd_encode512", t, &[]);
    let z = Tensor::randn(0f32, 1f32, (1, 4, 64, 64), &cpu)?;
    let t = best_of(args.repeats, || {
        pipeline::preview::latent_preview(&z, PipelineKind::StableDiffusion)?;
        Ok(())
    })?;
    report("linear_preview512", t, &[]);

    let Some(model_dir) = &args.model else {
        return Ok(());
    };
    let options = LoadOptions {
        taesd: Some(folder.clone()),
        ..LoadOptions::default()
    };
    let model = LoadedModel::load(model_dir, options, &mut |_| {})?;
    let t = best_of(args.repeats, || {
        pipeline::decode(&model, &z)?;
        Ok(())
    })?;
    report("vae_decode512", t, &[]);
    let full = best_of(args.repeats, || generation(&model, 1, 0.0, false, false))?;
    report("turbo512", full, &[("steps", "1".into())]);
    let draft = best_of(args.repeats, || generation(&model, 1, 0.0, true, false))?;
    report("turbo512_draft", draft, &[("steps", "1".into())]);
    let steps = args.steps;
    let off = best_of(1, || generation(&model, steps, 7.5, false, false))?;
    report("steps_previews_off", off, &[("steps", steps.to_string())]);
    let on = best_of(1, || generation(&model, steps, 7.5, false, true))?;
    let per_step = |a: f64, b: f64| format!("{:.1}", (a - b) / f64::from(steps) * 1e3);
    report(
        "steps_previews_taesd",
        on,
        &[
            ("steps", steps.to_string()),
            ("preview_ms_per_step", per_step(on.wall, off.wall)),
            ("preview_cpu_ms_per_step", per_step(on.cpu, off.cpu)),
        ],
    );
    Ok(())
}
