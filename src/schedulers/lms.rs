//! LMS: the linear multistep method of order 4 on the probability-flow ODE in σ (Karras et
//! al. 2022's dx/dσ = (x − x̂₀)/σ), as in k-diffusion's `sample_lms`: the last derivatives are
//! interpolated by a Lagrange polynomial in σ and integrated over [σ_i, σ_{i+1}].
//!
//! Matches diffusers' `LMSDiscreteScheduler` (order 4, warming up from 1): σ interpolated at
//! float32 timesteps or Karras-spaced between the ends of that schedule (LMS does not read
//! `sigma_min`/`sigma_max`), inputs scaled by 1/√(σ²+1). diffusers integrates each Lagrange
//! basis polynomial with `scipy.integrate.quad`; the integrand is a polynomial of degree at
//! most 3, so a 4-point Gauss–Legendre rule (exact to degree 7) gives the same numbers up to
//! rounding.

use std::collections::VecDeque;
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
    class: SamplerClass::LmsDiscrete,
    name: "LMSDiscreteScheduler",
    init_keys: &[
        "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "prediction_type",
        "timestep_spacing", "steps_offset",
    ],
    defaults: |_| {},
    build,
};

const ORDER: usize = 4;

struct Lms {
    prediction: PredictionType,
    /// The last `ORDER` derivatives, oldest first.
    derivatives: VecDeque<Tensor>,
}

fn build(cfg: &SchedulerConfig, steps: usize, _: &Path) -> Result<Parts> {
    let (timesteps, sigmas) = plain_sigma_schedule(cfg, steps, (None, None));
    let sigmas: Vec<f32> = sigmas.into_iter().chain([0.0]).map(|s| s as f32).collect();
    let lms = Lms {
        prediction: cfg.prediction_type,
        derivatives: VecDeque::with_capacity(ORDER),
    };
    Ok(Parts::new(
        Schedule::sigma_scaled(timesteps, sigmas, cfg.timestep_spacing),
        lms,
    ))
}

/// ∫ from σ_i to σ_{i+1} of the Lagrange basis polynomial that is 1 at σ_{i−k} and 0 at the
/// other `order − 1` nodes σ_{i−j}.
fn coefficient(sigmas: &[f32], order: usize, i: usize, k: usize) -> f64 {
    let node = |j: usize| sigmas[i - j] as f64;
    let basis = |tau: f64| -> f64 {
        (0..order)
            .filter(|&j| j != k)
            .map(|j| (tau - node(j)) / (node(k) - node(j)))
            .product()
    };
    gauss_legendre_4(basis, sigmas[i] as f64, sigmas[i + 1] as f64)
}

/// ∫ₐᵇ f by the 4-point Gauss–Legendre rule.
fn gauss_legendre_4(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    const NODES: [f64; 4] = [
        -0.861_136_311_594_052_6,
        -0.339_981_043_584_856_3,
        0.339_981_043_584_856_3,
        0.861_136_311_594_052_6,
    ];
    const WEIGHTS: [f64; 4] = [
        0.347_854_845_137_453_8,
        0.652_145_154_862_546_1,
        0.652_145_154_862_546_1,
        0.347_854_845_137_453_8,
    ];
    let (mid, half) = ((a + b) / 2.0, (b - a) / 2.0);
    half * NODES
        .iter()
        .zip(WEIGHTS)
        .map(|(x, w)| w * f(mid + half * x))
        .sum::<f64>()
}

impl Solver for Lms {
    fn step(
        &mut self,
        sched: &Schedule,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        _noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        let sigma = sched.sigmas[index];
        let x0 = schedule::sigma_pred_original(self.prediction, model_output, sample, sigma)?;
        let derivative = schedule::sigma_derivative(sample, &x0, sigma)?;
        if self.derivatives.len() == ORDER {
            self.derivatives.pop_front();
        }
        self.derivatives.push_back(derivative);
        let order = (index + 1).min(ORDER);
        // Coefficient k goes with the derivative k steps back; summed in diffusers' order.
        let mut sum: Option<Tensor> = None;
        for (k, d) in self.derivatives.iter().rev().take(order).enumerate() {
            let term = schedule::mul32(d, coefficient(&sched.sigmas, order, index, k) as f32)?;
            sum = Some(match sum {
                Some(s) => (s + term)?,
                None => term,
            });
        }
        Ok(match sum {
            Some(s) => (sample + s)?,
            None => sample.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::gauss_legendre_4;

    #[test]
    fn gauss_legendre_is_exact_for_cubics() {
        let f = |x: f64| 3.0 * x * x * x - x * x + 2.0;
        let exact = |x: f64| 0.75 * x.powi(4) - x.powi(3) / 3.0 + 2.0 * x;
        let got = gauss_legendre_4(f, 14.6, 0.3);
        assert!((got - (exact(0.3) - exact(14.6))).abs() < 1e-9 * exact(14.6).abs());
    }
}
