//! Euler: the first-order solver of the probability-flow ODE dx/dσ = (x − x̂₀)/σ, Karras et
//! al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models", Algorithm 2
//! without churn (γ = 0) and without its second-order correction.
//!
//! Matches diffusers' `EulerDiscreteScheduler` (s_churn 0, as StableDiffusionPipeline calls
//! it): σ per timestep interpolated linearly from the training table (or `log_linear`, or
//! Karras' ρ = 7 spacing with fractional timesteps found back through ln σ), a final σ of 0
//! or σ_min, inputs scaled by 1/√(σ²+1), and `timestep_type: continuous` v-prediction
//! models fed 0.25·ln σ as their timestep.

use candle_core::Tensor;

use super::config::{FinalSigmas, InterpolationType, PredictionType, SchedulerConfig, TimestepType};
use super::schedule::{self, Layout, check_in_order, check_index, f32_round};
use super::{NoiseSource, SamplerKind, Scheduler};
use crate::error::Result;

pub struct Euler {
    timesteps: Vec<f64>,
    /// σ for each timestep plus the final one, float32 as diffusers keeps them.
    sigmas: Vec<f32>,
    init_noise_sigma: f64,
    prediction: PredictionType,
    steps_taken: usize,
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

impl Euler {
    pub fn new(cfg: &SchedulerConfig, steps: usize) -> Euler {
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
        Euler {
            init_noise_sigma: schedule::sigma_init_noise(&sigmas, cfg.timestep_spacing),
            timesteps,
            sigmas,
            prediction: cfg.prediction_type,
            steps_taken: 0,
        }
    }
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

/// x / √(σ² + 1): what the UNet sees at σ (unit variance when x ~ x₀ + σ·ε).
pub(crate) fn scale_by_sigma(sample: &Tensor, sigma: f32) -> Result<Tensor> {
    schedule::div32(sample, (sigma * sigma + 1.0).sqrt())
}

impl Scheduler for Euler {
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
        _noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        check_in_order(index, self.steps_taken, self.timesteps.len())?;
        let sigma = self.sigmas[index];
        let x0 = schedule::sigma_pred_original(self.prediction, model_output, sample, sigma)?;
        // d = (x − x̂₀)/σ, then x ← x + d·(σ_next − σ).
        let derivative = schedule::sigma_derivative(sample, &x0, sigma)?;
        let prev = schedule::euler_update(sample, &derivative, self.sigmas[index + 1] - sigma)?;
        self.steps_taken += 1;
        Ok(prev)
    }

    fn kind(&self) -> SamplerKind {
        SamplerKind::Euler
    }
}
