//! Samplers ("schedulers" in diffusers' words): one file per sampler behind [`Scheduler`].
//!
//! Every sampler here is checked against diffusers' own implementation; a sampler override
//! behaves like diffusers' `XScheduler.from_config(folder_scheduler_config)`: fields the
//! folder's JSON sets carry over, the others take the new sampler's own defaults.
//!
//! ## The sampler table
//!
//! [`SAMPLERS`] lists every sampler choice once, one [`SamplerInfo`] row per [`SamplerKind`]:
//! its `--scheduler` name (also its name in settings, history and serde), its AUTOMATIC1111
//! sampler and schedule type, its GUI label, and the diffusers class it builds — a
//! [`ClassInfo`] defined in the sampler's own file: `_class_name`, the `__init__` keys
//! `from_config` carries over, the class's defaults, its constructor. Name parsing and
//! printing both ways, serde, the GUI's sampler combo and [`build`] all read the table.
//!
//! A sampler file holds only what is its own: the constructor, which lays out the timesteps
//! (and σ) as a `common::Schedule`, and the update rule (`common::Solver`). The
//! [`Scheduler`] around them — the timestep list, the initial noise scale, the UNet input
//! scaling, the in-order check — is written once, in `common.rs`.
//!
//! ## To add a sampler
//!
//! 1. Write `src/schedulers/<name>.rs` with a constructor
//!    `fn build(&SchedulerConfig, steps, &Path) -> Result<Parts>` returning
//!    `Parts::new(Schedule::unscaled(..) or Schedule::sigma_scaled(..), solver)`, and
//!    `impl Solver` for the solver. For a diffusers class not implemented yet, also
//!    `pub(super) const CLASS: ClassInfo` there (class name, `__init__` keys besides
//!    `config::COMMON_INIT_KEYS`, defaults that differ from `SchedulerConfig::defaults`,
//!    `build`) and a [`SamplerClass`] variant in `config.rs`.
//! 2. Add `mod <name>;` below.
//! 3. Add a [`SamplerKind`] variant and, at the same position in [`SAMPLERS`], its row
//!    (names, label, `class: Some(&<name>::CLASS)`, flags); a row out of order fails the
//!    build. A variant of an existing class (another Karras flavour, say) is only this step.
//! 4. Only if the class reads a config key no other class reads: a [`SchedulerConfig`] field
//!    and its arm in `SchedulerConfig::set` (keys without an arm are ignored), and any
//!    class-specific check in `SchedulerConfig::validate`.
//! 5. Prove it against diffusers: its cli name in `tools/make_scheduler_refs.py`'s `KINDS`
//!    (and `CLASS_KIND` for a new class), the refs in `tests/fixtures/schedulers/refs`
//!    regenerated, which `tests/schedulers.rs` replays.
//!
//! [`build`] is the entry point: it resolves the folder's config for the chosen sampler
//! ([`config`]) and sets the sampler up for a number of steps. The pipeline then evaluates the
//! UNet at each of [`Scheduler::timesteps`] in order — index `i` is the position in that list,
//! exactly as diffusers' pipelines walk `scheduler.timesteps` — calling
//! [`Scheduler::scale_model_input`] before and [`Scheduler::step`] after each evaluation.
//!
//! Where diffusers' StableDiffusionPipeline finds the first step index by looking the first
//! timestep up in the schedule (taking its *second* occurrence when it repeats), we always
//! start at index 0, as the SDXL pipeline does with `set_begin_index(0)`. The two agree
//! whenever the first timestep is unique; when it is not, diffusers' SD pipeline runs off the
//! end of its sigmas and fails.

mod common;
pub mod config;
mod ddim;
mod dpmpp_2m;
mod euler;
mod euler_ancestral;
mod heun;
mod lms;
mod pndm;
mod schedule;
mod table;
mod unipc;

use std::path::Path;

use candle_core::Tensor;

use self::common::Sampler;
pub use self::config::{SamplerClass, SchedulerConfig};
pub use self::table::{ClassInfo, SAMPLERS, SamplerInfo, SamplerKind};
use crate::error::{Error, Result};

/// Where ancestral samplers get their fresh noise (seeded by the pipeline).
pub trait NoiseSource {
    /// Standard normal noise of `shape`, f32, on the same device as `like`.
    fn randn_like(&mut self, like: &Tensor) -> Result<Tensor>;
}

/// One sampler, already set up for a number of inference steps.
///
/// The pipeline calls the UNet once per entry of [`Scheduler::timesteps`] (PNDM and Heun
/// list more entries than inference steps, exactly as diffusers does) and then
/// [`Scheduler::step`] with that entry's index. Latents are f32.
pub trait Scheduler: Send {
    /// The timesteps the UNet is evaluated at, in order.
    fn timesteps(&self) -> &[f64];

    /// What the initial noise is multiplied by (diffusers' `init_noise_sigma`).
    fn init_noise_sigma(&self) -> f64;

    /// UNet calls per inference step (diffusers' `scheduler.order`: 2 for Heun, else 1).
    fn order(&self) -> usize;

    /// Starts the walk at entry `index` instead of 0 (diffusers' `set_begin_index`, which
    /// img2img uses to skip the noisiest steps). Only before the first step.
    fn begin_at(&mut self, index: usize) -> Result<()>;

    /// diffusers' `add_noise`: the clean latents `original` noised with `noise` to the level
    /// of entry `index` (img2img's start, inpainting's re-noised original at every step).
    fn add_noise(&self, original: &Tensor, noise: &Tensor, index: usize) -> Result<Tensor>;

    /// diffusers' `scale_model_input` for the UNet call at `index`.
    fn scale_model_input(&self, sample: &Tensor, index: usize) -> Result<Tensor>;

    /// One update; returns the new latents (diffusers' `prev_sample`).
    fn step(
        &mut self,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        noise: &mut dyn NoiseSource,
    ) -> Result<Tensor>;

    /// The sampler this scheduler implements (for `default`, the folder's own class).
    fn kind(&self) -> SamplerKind;
}

/// Builds `kind` for `num_inference_steps` from a model folder's parsed
/// `scheduler_config.json` (`config_path` names that file in errors).
///
/// [`SamplerKind::Default`] builds the file's own `_class_name`; any other kind behaves like
/// diffusers' `XScheduler.from_config(file)` (`dpmpp-2m-karras` adds `use_karras_sigmas`).
/// Zero steps, or more steps than the model has training timesteps, is an
/// [`Error::InvalidRequest`]; a config value we cannot honour is an [`Error::Config`].
pub fn build(
    kind: SamplerKind,
    folder_config: &serde_json::Value,
    config_path: &Path,
    num_inference_steps: usize,
) -> Result<Box<dyn Scheduler>> {
    let cfg = &SchedulerConfig::resolve(kind, folder_config, config_path)?;
    let steps = num_inference_steps;
    if steps == 0 {
        return Err(Error::invalid("the number of steps must be at least 1"));
    }
    if steps > cfg.num_train_timesteps {
        return Err(Error::invalid(format!(
            "{steps} steps is more than the {} timesteps this model was trained with",
            cfg.num_train_timesteps
        )));
    }
    let parts = (cfg.class.info().build)(cfg, steps, config_path)?;
    Ok(Box::new(Sampler::new(SamplerKind::of_config(cfg), parts)))
}

/// Reads a `scheduler_config.json`. Python's JSON writer emits bare `Infinity`, `-Infinity`
/// and `NaN` (diffusers saves DPM-Solver's default `lambda_min_clipped` as `-Infinity`);
/// those become the strings `"Infinity"`, `"-Infinity"` and `"NaN"` here; the config reader
/// takes the two infinities where a number is expected and refuses NaN.
pub fn read_config(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_config_text(&text, path)
}

/// The parsing half of [`read_config`].
pub fn parse_config_text(text: &str, path: &Path) -> Result<serde_json::Value> {
    serde_json::from_str(&quote_non_finite(text))
        .map_err(|e| Error::config(path, "(file)", format!("not valid JSON: {e}")))
}

/// Puts quotes around the bare non-finite literals Python writes, outside of strings.
fn quote_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        if let Some(word) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|w| rest.starts_with(w))
        {
            out.push('"');
            out.push_str(word);
            out.push('"');
            rest = &rest[word.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}
