//! Samplers ("schedulers" in diffusers' words): one file per sampler behind [`Scheduler`].
//!
//! Every sampler here is checked against diffusers' own implementation; a sampler override
//! behaves like diffusers' `XScheduler.from_config(folder_scheduler_config)`: fields the
//! folder's JSON sets carry over, the others take the new sampler's own defaults.

use std::fmt;

use candle_core::Tensor;

use crate::error::Result;

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

/// Builds a sampler for `num_inference_steps` from the folder's scheduler config.
/// (Implemented on the `schedulers` branch; this placeholder refuses.)
pub fn build(
    kind: SamplerKind,
    _folder_config: &serde_json::Value,
    config_path: &std::path::Path,
    _num_inference_steps: usize,
) -> Result<Box<dyn Scheduler>> {
    Err(crate::error::Error::config(
        config_path,
        "_class_name",
        format!("sampler {kind} not implemented yet"),
    ))
}
