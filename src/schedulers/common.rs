//! What every sampler shares, written once: the schedule the pipeline walks ([`Schedule`]),
//! the scaling of the UNet input, and the bookkeeping that makes the loop visit the
//! timesteps in order. A sampler file only supplies its update rule ([`Solver`]) and a
//! constructor ([`Constructor`]); [`Sampler`] turns the two into a [`Scheduler`].

use std::path::Path;

use candle_core::Tensor;

use super::config::{SchedulerConfig, TimestepSpacing};
use super::schedule;
use super::{NoiseSource, SamplerKind, Scheduler};
use crate::error::{Error, Result};

/// Builds a sampler's parts for a number of steps (`path` names the config file in errors).
pub(crate) type Constructor = fn(&SchedulerConfig, usize, &Path) -> Result<Parts>;

/// How the UNet input relates to the latents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModelInput {
    /// Variance-preserving samplers (DDIM, PNDM, DPM-Solver, UniPC) hand x_t over as is.
    AsIs,
    /// Samplers on x = x₀ + σ·ε (Euler, Euler a, LMS, Heun) divide by √(σ²+1) first.
    ScaledBySigma,
}

/// The timesteps the UNet is evaluated at and the noise levels that go with them.
pub(crate) struct Schedule {
    /// In the order the pipeline evaluates them.
    pub timesteps: Vec<f64>,
    /// σ for each timestep plus the final one, float32 as diffusers keeps them; empty for
    /// the samplers that work from ᾱ directly (DDIM, PNDM).
    pub sigmas: Vec<f32>,
    /// What the initial noise is multiplied by.
    pub init_noise_sigma: f64,
    pub input: ModelInput,
    /// How a clean sample is noised to a timestep's level (img2img, inpainting).
    pub noising: Noising,
    /// diffusers' `scheduler.order`: UNet calls per inference step (2 for Heun, whose list
    /// holds every timestep after the first twice). An img2img run that skips `k` inference
    /// steps starts at entry `k · order`.
    pub order: usize,
}

/// diffusers' `add_noise` of each sampler family: x₀ brought to the noise level of a timestep.
pub(crate) enum Noising {
    /// x₀ + σ·ε (Euler, Euler a, LMS, Heun): σ of the entry.
    Sigma,
    /// α·x₀ + σ_t·ε with α = 1/√(σ²+1), σ_t = σ·α (DPM-Solver, UniPC): σ of the entry.
    VariancePreservingSigma,
    /// √ᾱ_t·x₀ + √(1−ᾱ_t)·ε with ᾱ looked up at the entry's timestep (DDIM, PNDM).
    AlphasCumprod(Vec<f32>),
}

impl Schedule {
    /// A variance-preserving schedule on σ (DPM-Solver, UniPC): unit initial noise, the UNet
    /// sees x_t unchanged.
    pub fn unscaled(timesteps: Vec<f64>, sigmas: Vec<f32>) -> Schedule {
        Schedule {
            timesteps,
            sigmas,
            init_noise_sigma: 1.0,
            input: ModelInput::AsIs,
            noising: Noising::VariancePreservingSigma,
            order: 1,
        }
    }

    /// A variance-preserving schedule on ᾱ (DDIM, PNDM): no σ table; noising looks the
    /// timestep up in the training `alphas_cumprod`.
    pub fn alpha_bar(timesteps: Vec<f64>, alphas_cumprod: Vec<f32>) -> Schedule {
        Schedule {
            noising: Noising::AlphasCumprod(alphas_cumprod),
            ..Schedule::unscaled(timesteps, Vec::new())
        }
    }

    /// A σ-parameterised schedule: the initial noise is as large as the largest σ (see
    /// [`schedule::sigma_init_noise`]) and the UNet input is scaled back to unit variance.
    pub fn sigma_scaled(timesteps: Vec<f64>, sigmas: Vec<f32>, spacing: TimestepSpacing) -> Schedule {
        Schedule {
            init_noise_sigma: schedule::sigma_init_noise(&sigmas, spacing),
            timesteps,
            sigmas,
            input: ModelInput::ScaledBySigma,
            noising: Noising::Sigma,
            order: 1,
        }
    }

    /// diffusers' `add_noise` at entry `index`: `original` (x₀, the encoded picture) noised
    /// with `noise` to that entry's level, in float32 as diffusers computes it.
    pub fn add_noise(&self, original: &Tensor, noise: &Tensor, index: usize) -> Result<Tensor> {
        check_index(index, self.timesteps.len())?;
        let (a, b) = match &self.noising {
            Noising::Sigma => (1.0, self.sigmas[index]),
            Noising::VariancePreservingSigma => {
                let sigma = self.sigmas[index];
                let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
                (alpha, sigma * alpha)
            }
            Noising::AlphasCumprod(ac) => {
                let t = self.timesteps[index];
                let a = usize::try_from(t as i64)
                    .ok()
                    .and_then(|t| ac.get(t).copied())
                    .ok_or_else(|| Error::invalid(format!("timestep {t} is outside the training schedule")))?;
                (a.sqrt(), (1.0 - a).sqrt())
            }
        };
        let scaled = if a == 1.0 {
            original.clone()
        } else {
            schedule::mul32(original, a)?
        };
        Ok((scaled + schedule::mul32(noise, b)?)?)
    }
}

/// One sampler's update rule and whatever history it keeps between steps.
pub(crate) trait Solver: Send {
    /// diffusers' `step` at `index`; [`Sampler`] has already checked that `index` is the
    /// next step in order.
    fn step(
        &mut self,
        sched: &Schedule,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        noise: &mut dyn NoiseSource,
    ) -> Result<Tensor>;
}

/// What a [`Constructor`] returns: the schedule and the solver that steps along it.
pub(crate) struct Parts {
    pub schedule: Schedule,
    pub solver: Box<dyn Solver>,
}

impl Parts {
    pub fn new(schedule: Schedule, solver: impl Solver + 'static) -> Parts {
        Parts {
            schedule,
            solver: Box::new(solver),
        }
    }
}

/// The one [`Scheduler`] implementation: a [`Solver`] on its [`Schedule`].
pub(crate) struct Sampler {
    kind: SamplerKind,
    schedule: Schedule,
    solver: Box<dyn Solver>,
    steps_taken: usize,
}

impl Sampler {
    pub fn new(kind: SamplerKind, parts: Parts) -> Sampler {
        Sampler {
            kind,
            schedule: parts.schedule,
            solver: parts.solver,
            steps_taken: 0,
        }
    }
}

impl Scheduler for Sampler {
    fn timesteps(&self) -> &[f64] {
        &self.schedule.timesteps
    }

    fn init_noise_sigma(&self) -> f64 {
        self.schedule.init_noise_sigma
    }

    fn order(&self) -> usize {
        self.schedule.order
    }

    fn begin_at(&mut self, index: usize) -> Result<()> {
        if self.steps_taken != 0 {
            return Err(Error::invalid(
                "internal: a sampler's start is set before its first step",
            ));
        }
        check_index(index, self.schedule.timesteps.len())?;
        self.steps_taken = index;
        Ok(())
    }

    fn add_noise(&self, original: &Tensor, noise: &Tensor, index: usize) -> Result<Tensor> {
        self.schedule.add_noise(original, noise, index)
    }

    fn scale_model_input(&self, sample: &Tensor, index: usize) -> Result<Tensor> {
        check_index(index, self.schedule.timesteps.len())?;
        match self.schedule.input {
            ModelInput::AsIs => Ok(sample.clone()),
            ModelInput::ScaledBySigma => scale_by_sigma(sample, self.schedule.sigmas[index]),
        }
    }

    fn step(
        &mut self,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        check_in_order(index, self.steps_taken, self.schedule.timesteps.len())?;
        let prev = self.solver.step(&self.schedule, model_output, index, sample, noise)?;
        self.steps_taken += 1;
        Ok(prev)
    }

    fn kind(&self) -> SamplerKind {
        self.kind
    }
}

/// x / √(σ² + 1): what the UNet sees at σ (unit variance when x ~ x₀ + σ·ε).
fn scale_by_sigma(sample: &Tensor, sigma: f32) -> Result<Tensor> {
    schedule::div32(sample, (sigma * sigma + 1.0).sqrt())
}

/// The index of the step a scheduler is at, checked against the schedule's length.
fn check_index(index: usize, len: usize) -> Result<()> {
    if index >= len {
        return Err(Error::invalid(format!(
            "scheduler step {index} is past the end of its {len} timesteps"
        )));
    }
    Ok(())
}

/// Multistep samplers keep history, so the loop must visit the timesteps in order, once each.
fn check_in_order(index: usize, expected: usize, len: usize) -> Result<()> {
    check_index(index, len)?;
    if index != expected {
        return Err(Error::invalid(format!(
            "scheduler steps must be taken in order: expected step {expected}, got {index}"
        )));
    }
    Ok(())
}
