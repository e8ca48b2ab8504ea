//! DDIM, deterministic (η = 0): Song, Meng & Ermon, "Denoising Diffusion Implicit Models"
//! (2020), eq. 12 with σ_t = 0.
//!
//! Matches diffusers' `DDIMScheduler` as StableDiffusionPipeline drives it (eta 0.0): integer
//! timesteps, the previous timestep always `t − T // steps` whatever the spacing, ᾱ of a
//! negative previous timestep taken as 1 (`set_alpha_to_one`) or ᾱ₀, and x̂₀ clipped to
//! ±`clip_sample_range` when `clip_sample` is on. `thresholding` is refused by the config.

use std::path::Path;

use candle_core::Tensor;

use super::common::{Parts, Schedule, Solver};
use super::config::{PredictionType, SamplerClass, SchedulerConfig, TimestepSpacing};
use super::schedule::{self, Layout, div32, mul32};
use super::{ClassInfo, NoiseSource};
use crate::error::{Error, Result};

#[rustfmt::skip]
pub(super) const CLASS: ClassInfo = ClassInfo {
    class: SamplerClass::Ddim,
    name: "DDIMScheduler",
    init_keys: &[
        "clip_sample", "set_alpha_to_one", "steps_offset", "prediction_type", "thresholding",
        "dynamic_thresholding_ratio", "clip_sample_range", "sample_max_value",
        "timestep_spacing", "rescale_betas_zero_snr",
    ],
    defaults: |cfg| {
        cfg.timestep_spacing = TimestepSpacing::Leading;
        cfg.set_alpha_to_one = true;
        cfg.clip_sample = true;
    },
    build,
};

struct Ddim {
    alphas_cumprod: Vec<f32>,
    /// ᾱ used when the previous timestep falls below 0.
    final_alpha_cumprod: f32,
    /// `T // steps`: how far back each step goes.
    step_ratio: i64,
    prediction: PredictionType,
    clip: Option<f64>,
}

fn build(cfg: &SchedulerConfig, steps: usize, path: &Path) -> Result<Parts> {
    let alphas_cumprod = schedule::alphas_cumprod(cfg, false);
    let final_alpha_cumprod = if cfg.set_alpha_to_one { 1.0 } else { alphas_cumprod[0] };
    let ac_for_noising = alphas_cumprod.clone();
    let timesteps = integer_timesteps(cfg, steps, path)?;
    let ddim = Ddim {
        alphas_cumprod,
        final_alpha_cumprod,
        step_ratio: (cfg.num_train_timesteps / steps) as i64,
        prediction: cfg.prediction_type,
        clip: cfg.clip_sample.then_some(cfg.clip_sample_range),
    };
    Ok(Parts::new(Schedule::alpha_bar(timesteps, ac_for_noising), ddim))
}

impl Ddim {
    fn alpha_prev(&self, prev: i64) -> f32 {
        if prev >= 0 {
            self.alphas_cumprod[prev as usize]
        } else {
            self.final_alpha_cumprod
        }
    }
}

/// DDIM's (and PNDM's) integer timesteps, descending, each a valid training timestep.
pub(crate) fn integer_timesteps(cfg: &SchedulerConfig, steps: usize, path: &Path) -> Result<Vec<f64>> {
    let t = cfg.num_train_timesteps;
    let ts: Vec<f64> = schedule::spaced_timesteps(cfg.timestep_spacing, Layout::Steps, steps, t, t, cfg.steps_offset)
        .into_iter()
        .map(|v| match cfg.timestep_spacing {
            TimestepSpacing::Linspace => v.round_ties_even(),
            _ => v,
        })
        .collect();
    if let Some(&bad) = ts.iter().find(|&&v| v < 0.0 || v > (t - 1) as f64) {
        // Past the end: the offset pushed it there. Below 0: numpy's arange gave trailing
        // spacing one step too many (e.g. 61 steps), which diffusers would index as
        // alphas_cumprod[-1], the *last* training timestep.
        let field = if bad < 0.0 { "timestep_spacing" } else { "steps_offset" };
        return Err(Error::config(
            path,
            field,
            format!("{steps} steps put a timestep at {bad}, outside the {t} training timesteps"),
        ));
    }
    Ok(ts)
}

impl Solver for Ddim {
    fn step(
        &mut self,
        sched: &Schedule,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        _noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        let t = sched.timesteps[index] as i64;
        let prev = t - self.step_ratio;
        // float32 scalars and operation order as in diffusers, so the rounding matches.
        let a_t = self.alphas_cumprod[t as usize];
        let a_prev = self.alpha_prev(prev);
        let (sa, sb) = (a_t.sqrt(), (1.0 - a_t).sqrt());

        // x̂₀ and ε̂ from whatever the UNet predicts.
        let (mut x0, eps) = match self.prediction {
            PredictionType::Epsilon => (div32(&(sample - mul32(model_output, sb)?)?, sa)?, model_output.clone()),
            PredictionType::Sample => (model_output.clone(), div32(&(sample - mul32(model_output, sa)?)?, sb)?),
            PredictionType::VPrediction => (
                (mul32(sample, sa)? - mul32(model_output, sb)?)?,
                (mul32(model_output, sa)? + mul32(sample, sb)?)?,
            ),
        };
        if let Some(r) = self.clip {
            x0 = x0.clamp(-r, r)?;
        }
        // x_{t-1} = √ᾱ_{t-1} x̂₀ + √(1 − ᾱ_{t-1}) ε̂
        Ok((mul32(&x0, a_prev.sqrt())? + mul32(&eps, (1.0 - a_prev).sqrt())?)?)
    }
}
