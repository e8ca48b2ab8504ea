//! Euler ancestral: each step moves deterministically to σ_down with Euler's method and then
//! adds fresh noise of size σ_up, where σ_down² + σ_up² = σ_next² (Karras et al. 2022's
//! "ancestral sampling" reading of DDPM; k-diffusion's `sample_euler_ancestral` with η = 1).
//!
//! Matches diffusers' `EulerAncestralDiscreteScheduler`: linearly interpolated σ, inputs
//! scaled by 1/√(σ²+1), and one draw of standard-normal noise per step — including the last,
//! where σ_up is 0 — so a seeded run consumes its noise exactly as diffusers does with a
//! `torch.Generator`. Sample-prediction is refused by the config, as diffusers refuses it.

use candle_core::Tensor;

use super::config::{PredictionType, SchedulerConfig};
use super::euler::{interpolated_sigmas, scale_by_sigma, sigma_sampler_timesteps};
use super::schedule::{self, check_in_order, check_index};
use super::{NoiseSource, SamplerKind, Scheduler};
use crate::error::Result;

pub struct EulerAncestral {
    timesteps: Vec<f64>,
    sigmas: Vec<f32>,
    init_noise_sigma: f64,
    prediction: PredictionType,
    steps_taken: usize,
}

impl EulerAncestral {
    pub fn new(cfg: &SchedulerConfig, steps: usize) -> EulerAncestral {
        let ac = schedule::alphas_cumprod(cfg, true);
        let train = schedule::train_sigmas(&ac);
        let timesteps = sigma_sampler_timesteps(cfg, steps);
        let sigmas: Vec<f32> = interpolated_sigmas(&timesteps, &train)
            .into_iter()
            .chain([0.0])
            .map(|s| s as f32)
            .collect();
        EulerAncestral {
            init_noise_sigma: schedule::sigma_init_noise(&sigmas, cfg.timestep_spacing),
            timesteps,
            sigmas,
            prediction: cfg.prediction_type,
            steps_taken: 0,
        }
    }
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

impl Scheduler for EulerAncestral {
    fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    fn init_noise_sigma(&self) -> f64 {
        self.init_noise_sigma
    }

    fn scale_model_input(&self, sample: &Tensor, index: usize) -> Result<Tensor> {
        check_index(index, self.timesteps.len())?;
        scale_by_sigma(sample, self.sigmas[index])
    }

    fn step(
        &mut self,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        check_in_order(index, self.steps_taken, self.timesteps.len())?;
        let sigma = self.sigmas[index];
        let x0 = schedule::sigma_pred_original(self.prediction, model_output, sample, sigma)?;
        let (up, down) = ancestral_split(sigma, self.sigmas[index + 1]);
        let derivative = schedule::sigma_derivative(sample, &x0, sigma)?;
        let deterministic = schedule::euler_update(sample, &derivative, down - sigma)?;
        let fresh = noise.randn_like(model_output)?;
        let prev = (deterministic + schedule::mul32(&fresh, up)?)?;
        self.steps_taken += 1;
        Ok(prev)
    }

    fn kind(&self) -> SamplerKind {
        SamplerKind::EulerA
    }
}
