//! Samplers ("schedulers" in diffusers' words): one file per sampler behind [`Scheduler`].
//!
//! Every sampler here is checked against diffusers' own implementation; a sampler override
//! behaves like diffusers' `XScheduler.from_config(folder_scheduler_config)`: fields the
//! folder's JSON sets carry over, the others take the new sampler's own defaults.
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

pub mod config;
mod ddim;
mod dpmpp_2m;
mod euler;
mod euler_ancestral;
mod heun;
mod lms;
mod pndm;
mod schedule;
mod unipc;

use std::fmt;
use std::path::Path;

use candle_core::Tensor;

pub use self::config::{SamplerClass, SchedulerConfig};
use crate::error::{Error, Result};

/// The sampler names `lantern generate --scheduler` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// The model folder's own `scheduler/scheduler_config.json`.
    Default,
    Ddim,
    Pndm,
    Euler,
    EulerA,
    #[serde(rename = "dpmpp-2m")]
    DpmPp2m,
    #[serde(rename = "dpmpp-2m-karras")]
    DpmPp2mKarras,
    Unipc,
    Lms,
    Heun,
}

impl SamplerKind {
    pub const ALL: [SamplerKind; 10] = [
        SamplerKind::Default,
        SamplerKind::Ddim,
        SamplerKind::Pndm,
        SamplerKind::Euler,
        SamplerKind::EulerA,
        SamplerKind::DpmPp2m,
        SamplerKind::DpmPp2mKarras,
        SamplerKind::Unipc,
        SamplerKind::Lms,
        SamplerKind::Heun,
    ];

    /// The name used on the command line and in settings.
    pub fn cli_name(self) -> &'static str {
        match self {
            SamplerKind::Default => "default",
            SamplerKind::Ddim => "ddim",
            SamplerKind::Pndm => "pndm",
            SamplerKind::Euler => "euler",
            SamplerKind::EulerA => "euler-a",
            SamplerKind::DpmPp2m => "dpmpp-2m",
            SamplerKind::DpmPp2mKarras => "dpmpp-2m-karras",
            SamplerKind::Unipc => "unipc",
            SamplerKind::Lms => "lms",
            SamplerKind::Heun => "heun",
        }
    }

    pub fn from_cli_name(name: &str) -> Option<SamplerKind> {
        let name = name.trim().to_ascii_lowercase().replace('_', "-");
        SamplerKind::ALL.into_iter().find(|k| k.cli_name() == name)
    }

    /// Whether the same inputs always give the same image (no fresh noise per step).
    pub fn is_deterministic(self) -> bool {
        !matches!(self, SamplerKind::EulerA)
    }

    /// (sampler, schedule type) as AUTOMATIC1111 writes them in a PNG's `parameters`.
    pub fn a1111_names(self) -> (&'static str, &'static str) {
        match self {
            SamplerKind::Default => ("Default", "Automatic"),
            SamplerKind::Ddim => ("DDIM", "Automatic"),
            SamplerKind::Pndm => ("PLMS", "Automatic"),
            SamplerKind::Euler => ("Euler", "Automatic"),
            SamplerKind::EulerA => ("Euler a", "Automatic"),
            SamplerKind::DpmPp2m => ("DPM++ 2M", "Automatic"),
            SamplerKind::DpmPp2mKarras => ("DPM++ 2M", "Karras"),
            SamplerKind::Unipc => ("UniPC", "Automatic"),
            SamplerKind::Lms => ("LMS", "Automatic"),
            SamplerKind::Heun => ("Heun", "Automatic"),
        }
    }

    /// Reads AUTOMATIC1111's sampler names back, including the old combined form
    /// ("DPM++ 2M Karras") and the newer separate `Schedule type` field.
    pub fn from_a1111(sampler: &str, schedule_type: Option<&str>) -> Option<SamplerKind> {
        let s = sampler.trim();
        let (base, karras_in_name) = match s.strip_suffix(" Karras") {
            Some(b) => (b.trim(), true),
            None => (s, false),
        };
        let karras = karras_in_name || schedule_type.is_some_and(|t| t.trim().eq_ignore_ascii_case("karras"));
        let kind = match base.to_ascii_lowercase().as_str() {
            "ddim" => SamplerKind::Ddim,
            "plms" | "pndm" => SamplerKind::Pndm,
            "euler" => SamplerKind::Euler,
            "euler a" | "euler_a" | "euler ancestral" => SamplerKind::EulerA,
            "dpm++ 2m" | "dpmpp_2m" | "dpmpp-2m" => {
                if karras {
                    SamplerKind::DpmPp2mKarras
                } else {
                    SamplerKind::DpmPp2m
                }
            }
            "unipc" => SamplerKind::Unipc,
            "lms" => SamplerKind::Lms,
            "heun" => SamplerKind::Heun,
            "default" => SamplerKind::Default,
            _ => return SamplerKind::from_cli_name(base),
        };
        Some(kind)
    }
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cli_name())
    }
}

impl std::str::FromStr for SamplerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SamplerKind::from_cli_name(s).ok_or_else(|| {
            let names: Vec<_> = SamplerKind::ALL.iter().map(|k| k.cli_name()).collect();
            format!("unknown scheduler `{s}`; choose one of: {}", names.join(", "))
        })
    }
}

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
    Ok(match cfg.class {
        SamplerClass::Ddim => Box::new(ddim::Ddim::new(cfg, steps, config_path)?),
        SamplerClass::Pndm => Box::new(pndm::Pndm::new(cfg, steps, config_path)?),
        SamplerClass::EulerDiscrete => Box::new(euler::Euler::new(cfg, steps)),
        SamplerClass::EulerAncestralDiscrete => Box::new(euler_ancestral::EulerAncestral::new(cfg, steps)),
        SamplerClass::DpmSolverMultistep => Box::new(dpmpp_2m::DpmSolverMultistep::new(cfg, steps, config_path)?),
        SamplerClass::UniPcMultistep => Box::new(unipc::UniPc::new(cfg, steps)),
        SamplerClass::LmsDiscrete => Box::new(lms::Lms::new(cfg, steps)),
        SamplerClass::HeunDiscrete => Box::new(heun::Heun::new(cfg, steps)),
    })
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
