//! DPM-Solver++ (2M): Lu et al., "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
//! Probabilistic Models" (2022), the multistep data-prediction solver (Algorithm 2), also in
//! its noise-prediction form (`algorithm_type: dpmsolver`, Lu et al. 2022, "DPM-Solver") and
//! with the order-3 update of the same papers.
//!
//! Matches diffusers' `DPMSolverMultistepScheduler` (default: `dpmsolver++`, order 2,
//! `midpoint`): integer timesteps over `steps + 1` points with the last dropped, σ by
//! interpolation or Karras' ρ = 7 spacing (`use_karras_sigmas`, timesteps rounded except for
//! `squaredcos_cap_v2`, where they are truncated), first order for the first update, and a
//! first-order final update when `final_sigmas_type` is `zero`, `euler_at_final` is set, or
//! `lower_order_final` is set with fewer than 15 steps (which also lowers the one before it
//! from order 3 to 2). The SDE variants and thresholding are refused by the config.

use std::path::Path;

use candle_core::Tensor;

use super::common::{Parts, Schedule, Solver};
use super::config::{
    AlgorithmType, DpmSolverType, FinalSigmas, PredictionType, SamplerClass, SchedulerConfig, TimestepSpacing,
};
use super::euler::karras_schedule;
use super::schedule::{self, Layout, lincomb};
use super::{ClassInfo, NoiseSource};
use crate::error::{Error, Result};

#[rustfmt::skip]
pub(super) const CLASS: ClassInfo = ClassInfo {
    class: SamplerClass::DpmSolverMultistep,
    name: "DPMSolverMultistepScheduler",
    init_keys: &[
        "solver_order", "prediction_type", "thresholding", "dynamic_thresholding_ratio",
        "sample_max_value", "algorithm_type", "solver_type", "lower_order_final",
        "euler_at_final", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
        "use_lu_lambdas", "use_flow_sigmas", "flow_shift", "final_sigmas_type",
        "lambda_min_clipped", "variance_type", "timestep_spacing", "steps_offset",
        "rescale_betas_zero_snr", "use_dynamic_shifting", "time_shift_type",
    ],
    defaults: |_| {},
    build,
};

struct DpmSolverMultistep {
    order: usize,
    algorithm: AlgorithmType,
    solver_type: DpmSolverType,
    prediction: PredictionType,
    lower_order_final: bool,
    euler_at_final: bool,
    final_sigma_zero: bool,
    /// Converted model outputs (x̂₀, or ε̂ for `dpmsolver`), oldest first.
    outputs: Vec<Tensor>,
    lower_order_nums: usize,
}

/// A point on the noise schedule in the variance-preserving view: x_t = α_t x₀ + σ_t ε,
/// with half-log-SNR λ_t = ln α_t − ln σ_t.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Point {
    pub alpha: f64,
    pub sigma: f64,
    pub lambda: f64,
}

impl Point {
    /// From the variance-exploding σ (= σ_t/α_t). σ = 0 gives λ = +∞, which the first-order
    /// updates handle exactly (e^(−∞) = 0).
    pub(crate) fn from_ve_sigma(ve: f32) -> Point {
        let ve = ve as f64;
        let alpha = 1.0 / (ve * ve + 1.0).sqrt();
        let sigma = ve * alpha;
        Point {
            alpha,
            sigma,
            lambda: alpha.ln() - sigma.ln(),
        }
    }

    /// The point at step `index` of a schedule's σ.
    pub(crate) fn at(sigmas: &[f32], index: usize) -> Point {
        Point::from_ve_sigma(sigmas[index])
    }
}

/// The training schedule's λ_t, float32, and how many of the lowest-λ timesteps fall below
/// `lambda_min_clipped` (diffusers' `searchsorted` on the flipped table).
fn clipped_count(alphas_cumprod: &[f32], lambda_min_clipped: f64) -> usize {
    alphas_cumprod
        .iter()
        .map(|&a| a.sqrt().ln() - (1.0 - a).sqrt().ln())
        .filter(|&l| (l as f64) < lambda_min_clipped)
        .count()
}

/// Integer timesteps and σ for DPM-Solver and UniPC before the final σ is appended.
/// `round_karras` says whether Karras timesteps are rounded (else truncated) to integers.
pub(crate) fn multistep_schedule(
    cfg: &SchedulerConfig,
    steps: usize,
    last_timestep: usize,
    round_karras: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f32>) {
    let ac = schedule::alphas_cumprod(cfg, true);
    let train = schedule::train_sigmas(&ac);
    let log_sigmas = schedule::log_sigmas(&train);
    let mut timesteps: Vec<f64> = schedule::spaced_timesteps(
        cfg.timestep_spacing,
        Layout::StepsPlusOneDropLast,
        steps,
        cfg.num_train_timesteps,
        last_timestep,
        cfg.steps_offset,
    );
    if cfg.timestep_spacing == TimestepSpacing::Linspace {
        timesteps = timesteps.into_iter().map(f64::round_ties_even).collect();
    }
    let sigmas = if cfg.use_karras_sigmas {
        let flipped: Vec<f64> = train.iter().rev().map(|&s| s as f64).collect();
        let (s, t) = karras_schedule(&flipped, (cfg.sigma_min, cfg.sigma_max), steps, &log_sigmas);
        timesteps = t
            .into_iter()
            .map(|v| if round_karras { v.round_ties_even() } else { v.trunc() })
            .collect();
        s
    } else {
        timesteps.iter().map(|&t| schedule::interp(t, &train)).collect()
    };
    (timesteps, sigmas, train)
}

fn build(cfg: &SchedulerConfig, steps: usize, path: &Path) -> Result<Parts> {
    let ac = schedule::alphas_cumprod(cfg, true);
    let last_timestep = cfg.num_train_timesteps - clipped_count(&ac, cfg.lambda_min_clipped);
    if last_timestep == 0 {
        return Err(Error::config(
            path,
            "lambda_min_clipped",
            "clips away every training timestep",
        ));
    }
    // diffusers rounds Karras timesteps except for the cosine schedule (by name).
    let round_karras = cfg.beta_schedule_name != "squaredcos_cap_v2";
    let (timesteps, sigmas, train) = multistep_schedule(cfg, steps, last_timestep, round_karras);
    let last = match cfg.final_sigmas_type {
        FinalSigmas::Zero => 0.0,
        FinalSigmas::SigmaMin => train[0] as f64,
    };
    let sigmas = sigmas.iter().chain([&last]).map(|&s| s as f32).collect();
    let dpm = DpmSolverMultistep {
        order: cfg.solver_order,
        algorithm: cfg.algorithm_type,
        solver_type: cfg.dpm_solver_type,
        prediction: cfg.prediction_type,
        lower_order_final: cfg.lower_order_final,
        euler_at_final: cfg.euler_at_final,
        final_sigma_zero: cfg.final_sigmas_type == FinalSigmas::Zero,
        outputs: Vec::new(),
        lower_order_nums: 0,
    };
    Ok(Parts::new(Schedule::unscaled(timesteps, sigmas), dpm))
}

impl DpmSolverMultistep {
    /// The model output in the form the solver integrates: x̂₀ for DPM-Solver++, ε̂ for
    /// DPM-Solver.
    fn convert(&self, sigmas: &[f32], model_output: &Tensor, sample: &Tensor, index: usize) -> Result<Tensor> {
        let p = Point::at(sigmas, index);
        let (a, s) = (p.alpha, p.sigma);
        Ok(match (self.algorithm, self.prediction) {
            (AlgorithmType::DpmSolverPlusPlus, PredictionType::Epsilon) => {
                lincomb(&[(1.0 / a, sample), (-s / a, model_output)])?
            }
            (AlgorithmType::DpmSolverPlusPlus, PredictionType::Sample) => model_output.clone(),
            (AlgorithmType::DpmSolverPlusPlus, PredictionType::VPrediction) => {
                lincomb(&[(a, sample), (-s, model_output)])?
            }
            (AlgorithmType::DpmSolver, PredictionType::Epsilon) => model_output.clone(),
            (AlgorithmType::DpmSolver, PredictionType::Sample) => {
                lincomb(&[(1.0 / s, sample), (-a / s, model_output)])?
            }
            (AlgorithmType::DpmSolver, PredictionType::VPrediction) => lincomb(&[(a, model_output), (s, sample)])?,
        })
    }

    /// DPM-Solver-1 (= DDIM) from step `i` to `i + 1`.
    fn first_order(&self, sigmas: &[f32], i: usize, sample: &Tensor) -> Result<Tensor> {
        let (t, s0) = (Point::at(sigmas, i + 1), Point::at(sigmas, i));
        let h = t.lambda - s0.lambda;
        let m0 = &self.outputs[self.outputs.len() - 1];
        match self.algorithm {
            AlgorithmType::DpmSolverPlusPlus => {
                lincomb(&[(t.sigma / s0.sigma, sample), (-t.alpha * ((-h).exp() - 1.0), m0)])
            }
            AlgorithmType::DpmSolver => lincomb(&[(t.alpha / s0.alpha, sample), (-t.sigma * (h.exp() - 1.0), m0)]),
        }
    }

    /// Multistep second order (Algorithm 2 of DPM-Solver++): D₀ = m₀, D₁ = (m₀ − m₁)/r₀.
    fn second_order(&self, sigmas: &[f32], i: usize, sample: &Tensor) -> Result<Tensor> {
        let (t, s0, s1) = (Point::at(sigmas, i + 1), Point::at(sigmas, i), Point::at(sigmas, i - 1));
        let n = self.outputs.len();
        let (m0, m1) = (&self.outputs[n - 1], &self.outputs[n - 2]);
        let h = t.lambda - s0.lambda;
        let r0 = (s0.lambda - s1.lambda) / h;
        // Coefficients of sample, D0 and D1.
        let (cx, c0, c1) = match (self.algorithm, self.solver_type) {
            (AlgorithmType::DpmSolverPlusPlus, DpmSolverType::Midpoint) => {
                let e = t.alpha * ((-h).exp() - 1.0);
                (t.sigma / s0.sigma, -e, -0.5 * e)
            }
            (AlgorithmType::DpmSolverPlusPlus, DpmSolverType::Heun) => {
                let em1 = (-h).exp() - 1.0;
                (t.sigma / s0.sigma, -t.alpha * em1, t.alpha * (em1 / h + 1.0))
            }
            (AlgorithmType::DpmSolver, DpmSolverType::Midpoint) => {
                let e = t.sigma * (h.exp() - 1.0);
                (t.alpha / s0.alpha, -e, -0.5 * e)
            }
            (AlgorithmType::DpmSolver, DpmSolverType::Heun) => {
                let em1 = h.exp() - 1.0;
                (t.alpha / s0.alpha, -t.sigma * em1, -t.sigma * (em1 / h - 1.0))
            }
        };
        // D1 = (m0 - m1) / r0
        lincomb(&[(cx, sample), (c0 + c1 / r0, m0), (-c1 / r0, m1)])
    }

    /// Multistep third order (both papers' order-3 update).
    fn third_order(&self, sigmas: &[f32], i: usize, sample: &Tensor) -> Result<Tensor> {
        let (t, s0) = (Point::at(sigmas, i + 1), Point::at(sigmas, i));
        let (s1, s2) = (Point::at(sigmas, i - 1), Point::at(sigmas, i - 2));
        let n = self.outputs.len();
        let (m0, m1, m2) = (&self.outputs[n - 1], &self.outputs[n - 2], &self.outputs[n - 3]);
        let h = t.lambda - s0.lambda;
        let (r0, r1) = ((s0.lambda - s1.lambda) / h, (s1.lambda - s2.lambda) / h);
        // D1_0 = (m0 - m1)/r0, D1_1 = (m1 - m2)/r1, as coefficient vectors over (m0, m1, m2).
        let d10 = [1.0 / r0, -1.0 / r0, 0.0];
        let d11 = [0.0, 1.0 / r1, -1.0 / r1];
        let diff: Vec<f64> = (0..3).map(|k| d10[k] - d11[k]).collect();
        let d1: Vec<f64> = (0..3).map(|k| d10[k] + r0 / (r0 + r1) * diff[k]).collect();
        let d2: Vec<f64> = (0..3).map(|k| diff[k] / (r0 + r1)).collect();
        let (cx, c0, c1, c2) = match self.algorithm {
            AlgorithmType::DpmSolverPlusPlus => {
                let em1 = (-h).exp() - 1.0;
                (
                    t.sigma / s0.sigma,
                    -t.alpha * em1,
                    t.alpha * (em1 / h + 1.0),
                    -t.alpha * ((em1 + h) / (h * h) - 0.5),
                )
            }
            AlgorithmType::DpmSolver => {
                let em1 = h.exp() - 1.0;
                (
                    t.alpha / s0.alpha,
                    -t.sigma * em1,
                    -t.sigma * (em1 / h - 1.0),
                    -t.sigma * ((em1 - h) / (h * h) - 0.5),
                )
            }
        };
        let w: Vec<f64> = (0..3)
            .map(|k| c0 * [1.0, 0.0, 0.0][k] + c1 * d1[k] + c2 * d2[k])
            .collect();
        lincomb(&[(cx, sample), (w[0], m0), (w[1], m1), (w[2], m2)])
    }
}

impl Solver for DpmSolverMultistep {
    fn step(
        &mut self,
        sched: &Schedule,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        _noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        let sigmas = &sched.sigmas;
        let n = sched.timesteps.len();
        let few_steps = self.lower_order_final && n < 15;
        let lower_final = index == n - 1 && (self.euler_at_final || few_steps || self.final_sigma_zero);
        let lower_second = index + 2 == n && few_steps;

        let converted = self.convert(sigmas, model_output, sample, index)?;
        if self.outputs.len() == self.order {
            self.outputs.remove(0);
        }
        self.outputs.push(converted);

        let prev = if self.order == 1 || self.lower_order_nums < 1 || lower_final {
            self.first_order(sigmas, index, sample)?
        } else if self.order == 2 || self.lower_order_nums < 2 || lower_second {
            self.second_order(sigmas, index, sample)?
        } else {
            self.third_order(sigmas, index, sample)?
        };
        self.lower_order_nums = (self.lower_order_nums + 1).min(self.order);
        Ok(prev)
    }
}
