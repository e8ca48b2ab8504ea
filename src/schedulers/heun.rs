//! Heun: Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative
//! Models", Algorithm 1 (deterministic, 2nd order): an Euler step to σ_{i+1}, then a
//! correction with the average of the slopes at both ends — except the last step to σ = 0,
//! which stays a plain Euler step.
//!
//! Matches diffusers' `HeunDiscreteScheduler`: its schedule lists every timestep after the
//! first twice (one UNet call for each stage), so the UNet runs 2·steps − 1 times; σ is
//! interpolated or Karras-spaced (bounds from a `sigma_min`/`sigma_max` in the file, which
//! diffusers finds on the config object), x̂₀ is clipped when `clip_sample` is on.

use std::path::Path;

use candle_core::Tensor;

use super::common::{Parts, Schedule, Solver};
use super::config::{PredictionType, SamplerClass, SchedulerConfig};
use super::euler::plain_sigma_schedule;
use super::schedule;
use super::{ClassInfo, NoiseSource};
use crate::error::Result;

#[rustfmt::skip]
pub(super) const CLASS: ClassInfo = ClassInfo {
    class: SamplerClass::HeunDiscrete,
    name: "HeunDiscreteScheduler",
    init_keys: &[
        "prediction_type", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
        "clip_sample", "clip_sample_range", "timestep_spacing", "steps_offset",
    ],
    // Heun's betas default to Stable Diffusion's range, unlike every other class's.
    defaults: |cfg| {
        cfg.beta_start = 0.00085;
        cfg.beta_end = 0.012;
    },
    build,
};

struct Heun {
    prediction: PredictionType,
    clip: Option<f64>,
    /// Between the two stages of a step: the first stage's slope, step size and start.
    first_stage: Option<(Tensor, f32, Tensor)>,
}

/// diffusers' `set_timesteps`: every timestep after the first listed twice and σ (with the
/// final 0) doubled to match, one UNet call per stage.
fn build(cfg: &SchedulerConfig, steps: usize, _: &Path) -> Result<Parts> {
    let (timesteps, sigmas) = plain_sigma_schedule(cfg, steps, (cfg.sigma_min, cfg.sigma_max));
    let sigmas: Vec<f32> = sigmas.into_iter().chain([0.0]).map(|s| s as f32).collect();
    let sigmas = double_interior(&sigmas);
    let timesteps = double_after_first(&timesteps);
    let heun = Heun {
        prediction: cfg.prediction_type,
        clip: cfg.clip_sample.then_some(cfg.clip_sample_range),
        first_stage: None,
    };
    let schedule = Schedule {
        order: 2,
        ..Schedule::sigma_scaled(timesteps, sigmas, cfg.timestep_spacing)
    };
    Ok(Parts::new(schedule, heun))
}

impl Heun {
    fn pred_original(&self, model_output: &Tensor, sample: &Tensor, sigma: f32) -> Result<Tensor> {
        let x0 = schedule::sigma_pred_original(self.prediction, model_output, sample, sigma)?;
        Ok(match self.clip {
            Some(r) => x0.clamp(-r, r)?,
            None => x0,
        })
    }
}

/// [a, b, c, d] → [a, b, b, c, c, d]
fn double_interior(v: &[f32]) -> Vec<f32> {
    let n = v.len();
    let mut out = vec![v[0]];
    for &x in &v[1..n - 1] {
        out.extend([x, x]);
    }
    if n > 1 {
        out.push(v[n - 1]);
    }
    out
}

/// [a, b, c] → [a, b, b, c, c]
fn double_after_first(v: &[f64]) -> Vec<f64> {
    let mut out = vec![v[0]];
    for &x in &v[1..] {
        out.extend([x, x]);
    }
    out
}

impl Solver for Heun {
    fn step(
        &mut self,
        sched: &Schedule,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        _noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        Ok(match self.first_stage.take() {
            None => {
                // Euler step from σ_i to σ_{i+1}; remember its slope for the correction.
                let sigma = sched.sigmas[index];
                let next = sched.sigmas[index + 1];
                let x0 = self.pred_original(model_output, sample, sigma)?;
                let derivative = schedule::sigma_derivative(sample, &x0, sigma)?;
                let dt = next - sigma;
                let prev = schedule::euler_update(sample, &derivative, dt)?;
                self.first_stage = Some((derivative, dt, sample.clone()));
                prev
            }
            Some((first_derivative, dt, start)) => {
                // Slope at the Euler estimate, averaged with the first one, applied from the
                // step's start.
                let next = sched.sigmas[index];
                let x0 = self.pred_original(model_output, sample, next)?;
                let derivative = schedule::sigma_derivative(sample, &x0, next)?;
                let mean = schedule::div32(&(first_derivative + derivative)?, 2.0)?;
                schedule::euler_update(&start, &mean, dt)?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interior_values_are_doubled() {
        assert_eq!(
            double_interior(&[3.0, 2.0, 1.0, 0.0]),
            vec![3.0, 2.0, 2.0, 1.0, 1.0, 0.0]
        );
        assert_eq!(double_interior(&[3.0, 0.0]), vec![3.0, 0.0]);
        assert_eq!(double_after_first(&[9.0, 5.0]), vec![9.0, 5.0, 5.0]);
    }
}
