//! Euler ancestral: each step moves deterministically to σ_down with Euler's method and then
//! adds fresh noise of size σ_up, where σ_down² + σ_up² = σ_next² (Karras et al. 2022's
//! "ancestral sampling" reading of DDPM; k-diffusion's `sample_euler_ancestral` with η = 1).
//!
//! Matches diffusers' `EulerAncestralDiscreteScheduler`: linearly interpolated σ, inputs
//! scaled by 1/√(σ²+1), and one draw of standard-normal noise per step — including the last,
//! where σ_up is 0 — so a seeded run consumes its noise exactly as diffusers does with a
//! `torch.Generator`. Sample-prediction is refused by the config, as diffusers refuses it.

use std::path::Path;

use candle_core::Tensor;

use super::common::{Parts, Schedule, Solver};
use super::config::{PredictionType, SamplerClass, SchedulerConfig};
use super::euler::{interpolated_sigmas, sigma_sampler_timesteps};
use super::schedule;
use super::{ClassInfo, NoiseSource};
use crate::error::Result;

#[rustfmt::skip]
pub(super) const CLASS: ClassInfo = ClassInfo {
    class: SamplerClass::EulerAncestralDiscrete,
    name: "EulerAncestralDiscreteScheduler",
    init_keys: &["prediction_type", "timestep_spacing", "steps_offset", "rescale_betas_zero_snr"],
    defaults: |_| {},
    build,
};

struct EulerAncestral {
    prediction: PredictionType,
}

fn build(cfg: &SchedulerConfig, steps: usize, _: &Path) -> Result<Parts> {
    let ac = schedule::alphas_cumprod(cfg, true);
    let train = schedule::train_sigmas(&ac);
    let timesteps = sigma_sampler_timesteps(cfg, steps);
    let sigmas: Vec<f32> = interpolated_sigmas(&timesteps, &train)
        .into_iter()
        .chain([0.0])
        .map(|s| s as f32)
        .collect();
    let solver = EulerAncestral {
        prediction: cfg.prediction_type,
    };
    Ok(Parts::new(
        Schedule::sigma_scaled(timesteps, sigmas, cfg.timestep_spacing),
        solver,
    ))
}

/// (σ_up, σ_down) for a step from σ_from to σ_to, in float32 as diffusers computes them —
/// except that σ_down² is kept from going below 0: with a huge σ_from (the cosine schedule's
/// first step) rounding makes it slightly negative and diffusers' latents turn to NaN.
fn ancestral_split(sigma_from: f32, sigma_to: f32) -> (f32, f32) {
    let (from2, to2) = (sigma_from * sigma_from, sigma_to * sigma_to);
    let up = (to2 * (from2 - to2) / from2).sqrt();
    let down = (to2 - up * up).max(0.0).sqrt();
    (up, down)
}

impl Solver for EulerAncestral {
    fn step(
        &mut self,
        sched: &Schedule,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        let sigma = sched.sigmas[index];
        let x0 = schedule::sigma_pred_original(self.prediction, model_output, sample, sigma)?;
        let (up, down) = ancestral_split(sigma, sched.sigmas[index + 1]);
        let derivative = schedule::sigma_derivative(sample, &x0, sigma)?;
        let deterministic = schedule::euler_update(sample, &derivative, down - sigma)?;
        let fresh = noise.randn_like(model_output)?;
        Ok((deterministic + schedule::mul32(&fresh, up)?)?)
    }
}
