//! Euler: the first-order solver of the probability-flow ODE dx/dσ = (x − x̂₀)/σ, Karras et
//! al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models", Algorithm 2
//! without churn (γ = 0) and without its second-order correction.
//!
//! Matches diffusers' `EulerDiscreteScheduler` (s_churn 0, as StableDiffusionPipeline calls
//! it): σ per timestep interpolated linearly from the training table (or `log_linear`, or
//! Karras' ρ = 7 spacing with fractional timesteps found back through ln σ), a final σ of 0
//! or σ_min, inputs scaled by 1/√(σ²+1), and `timestep_type: continuous` v-prediction
//! models fed 0.25·ln σ as their timestep.

use std::path::Path;

use candle_core::Tensor;

use super::common::{Parts, Schedule, Solver};
use super::config::{FinalSigmas, InterpolationType, PredictionType, SamplerClass, SchedulerConfig, TimestepType};
use super::schedule::{self, Layout, f32_round};
use super::{ClassInfo, NoiseSource};
use crate::error::Result;

#[rustfmt::skip]
pub(super) const CLASS: ClassInfo = ClassInfo {
    class: SamplerClass::EulerDiscrete,
    name: "EulerDiscreteScheduler",
    init_keys: &[
        "prediction_type", "interpolation_type", "use_karras_sigmas", "use_exponential_sigmas",
        "use_beta_sigmas", "sigma_min", "sigma_max", "timestep_spacing", "timestep_type",
        "steps_offset", "rescale_betas_zero_snr", "final_sigmas_type",
    ],
    defaults: |_| {},
    build,
};

struct Euler {
    prediction: PredictionType,
}

/// The float32 timesteps the σ-parameterised samplers (Euler, Euler-a, LMS, Heun) start from,
/// before any Karras conversion: `linspace` keeps fractional values, the others are integers.
pub(crate) fn sigma_sampler_timesteps(cfg: &SchedulerConfig, steps: usize) -> Vec<f64> {
    let t = cfg.num_train_timesteps;
    schedule::spaced_timesteps(cfg.timestep_spacing, Layout::Steps, steps, t, t, cfg.steps_offset)
        .into_iter()
        .map(f32_round)
        .collect()
}

/// The timesteps and σs (without the final 0) of the sigma samplers that take no zero-SNR
/// rescale or log-linear interpolation (Heun, LMS): spaced timesteps, σ interpolated from the
/// training schedule, Karras σs within `karras_bounds` when the config asks for them.
pub(crate) fn plain_sigma_schedule(
    cfg: &SchedulerConfig,
    steps: usize,
    karras_bounds: (Option<f64>, Option<f64>),
) -> (Vec<f64>, Vec<f64>) {
    let ac = schedule::alphas_cumprod(cfg, false);
    let train = schedule::train_sigmas(&ac);
    let mut timesteps = sigma_sampler_timesteps(cfg, steps);
    let mut sigmas = interpolated_sigmas(&timesteps, &train);
    if cfg.use_karras_sigmas {
        let log_sigmas = schedule::log_sigmas(&train);
        let (s, t) = karras_schedule(&sigmas, karras_bounds, steps, &log_sigmas);
        sigmas = s;
        timesteps = t.into_iter().map(schedule::f32_round).collect();
    }
    (timesteps, sigmas)
}

/// σ at each timestep, by `numpy.interp` over the training table.
pub(crate) fn interpolated_sigmas(timesteps: &[f64], train_sigmas: &[f32]) -> Vec<f64> {
    timesteps.iter().map(|&t| schedule::interp(t, train_sigmas)).collect()
}

/// Karras' ρ = 7 sigmas between the ends of `in_sigmas` (or the configured bounds), and the
/// fractional timesteps they correspond to.
pub(crate) fn karras_schedule(
    in_sigmas: &[f64],
    bounds: (Option<f64>, Option<f64>),
    steps: usize,
    log_sigmas: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    let sigma_min = bounds.0.unwrap_or(in_sigmas[in_sigmas.len() - 1]);
    let sigma_max = bounds.1.unwrap_or(in_sigmas[0]);
    let sigmas = schedule::karras_sigmas(sigma_min, sigma_max, steps);
    let timesteps = sigmas.iter().map(|&s| schedule::sigma_to_t(s, log_sigmas)).collect();
    (sigmas, timesteps)
}

fn build(cfg: &SchedulerConfig, steps: usize, _: &Path) -> Result<Parts> {
    let (timesteps, sigmas) = euler_schedule(cfg, steps);
    let euler = Euler {
        prediction: cfg.prediction_type,
    };
    Ok(Parts::new(
        Schedule::sigma_scaled(timesteps, sigmas, cfg.timestep_spacing),
        euler,
    ))
}

/// The timesteps and σ (with the final one appended) of diffusers' `set_timesteps`.
fn euler_schedule(cfg: &SchedulerConfig, steps: usize) -> (Vec<f64>, Vec<f32>) {
    let ac = schedule::alphas_cumprod(cfg, true);
    let train = schedule::train_sigmas(&ac);
    let log_sigmas = schedule::log_sigmas(&train);
    let mut timesteps = sigma_sampler_timesteps(cfg, steps);
    let mut sigmas: Vec<f64> = match cfg.interpolation_type {
        InterpolationType::Linear => interpolated_sigmas(&timesteps, &train),
        InterpolationType::LogLinear => log_linear_sigmas(&train, steps),
    };
    if cfg.use_karras_sigmas {
        let (s, t) = karras_schedule(&sigmas, (cfg.sigma_min, cfg.sigma_max), steps, &log_sigmas);
        sigmas = s;
        timesteps = t.into_iter().map(f32_round).collect();
    }
    let last = match cfg.final_sigmas_type {
        FinalSigmas::Zero => 0.0,
        FinalSigmas::SigmaMin => train[0] as f64,
    };
    let sigmas: Vec<f32> = sigmas.iter().chain([&last]).map(|&s| s as f32).collect();
    if cfg.timestep_type == TimestepType::Continuous && cfg.prediction_type == PredictionType::VPrediction {
        // EDM-style conditioning: the UNet takes c_noise = ln(σ)/4 as its timestep.
        timesteps = sigmas[..sigmas.len() - 1]
            .iter()
            .map(|s| (0.25f32 * s.ln()) as f64)
            .collect();
    }
    (timesteps, sigmas)
}

/// `interpolation_type: log_linear`: steps + 1 sigmas evenly spaced in ln σ from the
/// largest training σ to the smallest (diffusers then appends the final σ as well, so the
/// run stops one σ short of it).
fn log_linear_sigmas(train: &[f32], steps: usize) -> Vec<f64> {
    let hi = train[train.len() - 1].ln() as f64;
    let lo = train[0].ln() as f64;
    torch_linspace_exp(hi, lo, steps + 1)
}

/// `torch.linspace(a, b, n).exp()` in float32.
fn torch_linspace_exp(a: f64, b: f64, n: usize) -> Vec<f64> {
    let (a, b) = (a as f32, b as f32);
    if n == 1 {
        return vec![a.exp() as f64];
    }
    let step = (b - a) / (n - 1) as f32;
    (0..n)
        .map(|i| {
            let v = if i < n / 2 {
                a + step * i as f32
            } else {
                b - step * (n - i - 1) as f32
            };
            v.exp() as f64
        })
        .collect()
}

impl Solver for Euler {
    fn step(
        &mut self,
        sched: &Schedule,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        _noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        let sigmas = &sched.sigmas;
        let sigma = sigmas[index];
        let x0 = schedule::sigma_pred_original(self.prediction, model_output, sample, sigma)?;
        // d = (x − x̂₀)/σ, then x ← x + d·(σ_next − σ).
        let derivative = schedule::sigma_derivative(sample, &x0, sigma)?;
        schedule::euler_update(sample, &derivative, sigmas[index + 1] - sigma)
    }
}
