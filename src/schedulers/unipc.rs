//! UniPC: Zhao et al., "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of
//! Diffusion Models" (NeurIPS 2023). Each step first corrects the previous update with the
//! model output just computed at its end (UniC, Algorithm 2 — no extra UNet call), then
//! predicts the next sample (UniP, Algorithm 1), both with the B(h) of variant bh1 (B = h) or
//! bh2 (B = eʰ − 1).
//!
//! Matches diffusers' `UniPCMultistepScheduler` (defaults: bh2, order 2, data prediction,
//! corrector on, `lower_order_final`): timesteps and σ laid out as for DPM-Solver (Karras
//! timesteps always rounded), order warming up from 1, and with `lower_order_final` the order
//! capped by the steps left — so the final update is always first order, whatever the step
//! count. Combinations where diffusers returns NaN are refused by the config.

use std::path::Path;

use candle_core::Tensor;

use super::common::{Parts, Schedule, Solver};
use super::config::{FinalSigmas, PredictionType, SamplerClass, SchedulerConfig, UniPcSolverType};
use super::dpmpp_2m::{Point, multistep_schedule};
use super::schedule::lincomb;
use super::{ClassInfo, NoiseSource};
use crate::error::{Error, Result};

#[rustfmt::skip]
pub(super) const CLASS: ClassInfo = ClassInfo {
    class: SamplerClass::UniPcMultistep,
    name: "UniPCMultistepScheduler",
    init_keys: &[
        "solver_order", "prediction_type", "thresholding", "dynamic_thresholding_ratio",
        "sample_max_value", "predict_x0", "solver_type", "lower_order_final",
        "disable_corrector", "solver_p", "use_karras_sigmas", "use_exponential_sigmas",
        "use_beta_sigmas", "use_flow_sigmas", "flow_shift", "timestep_spacing", "steps_offset",
        "final_sigmas_type", "rescale_betas_zero_snr", "use_dynamic_shifting",
        "time_shift_type", "sigma_min", "sigma_max", "shift_terminal",
    ],
    defaults: |_| {},
    build,
};

struct UniPc {
    order: usize,
    predict_x0: bool,
    bh: UniPcSolverType,
    prediction: PredictionType,
    lower_order_final: bool,
    disable_corrector: Vec<usize>,
    /// Converted model outputs (x̂₀, or ε̂ without `predict_x0`), oldest first.
    outputs: Vec<Tensor>,
    lower_order_nums: usize,
    /// The sample the previous prediction started from, and that prediction's order.
    last: Option<(Tensor, usize)>,
}

fn build(cfg: &SchedulerConfig, steps: usize, _: &Path) -> Result<Parts> {
    let t = cfg.num_train_timesteps;
    let (timesteps, sigmas, train) = multistep_schedule(cfg, steps, t, true);
    let last = match (cfg.final_sigmas_type, cfg.use_karras_sigmas) {
        (FinalSigmas::Zero, _) => 0.0,
        // diffusers ends Karras at the last Karras σ, otherwise at the training σ_min.
        (FinalSigmas::SigmaMin, true) => sigmas[sigmas.len() - 1],
        (FinalSigmas::SigmaMin, false) => train[0] as f64,
    };
    let sigmas = sigmas.iter().chain([&last]).map(|&s| s as f32).collect();
    let unipc = UniPc {
        order: cfg.solver_order,
        predict_x0: cfg.predict_x0,
        bh: cfg.unipc_solver_type,
        prediction: cfg.prediction_type,
        lower_order_final: cfg.lower_order_final,
        disable_corrector: cfg.disable_corrector.clone(),
        outputs: Vec::new(),
        lower_order_nums: 0,
        last: None,
    };
    Ok(Parts::new(Schedule::unscaled(timesteps, sigmas), unipc))
}

impl UniPc {
    fn convert(&self, sigmas: &[f32], model_output: &Tensor, sample: &Tensor, index: usize) -> Result<Tensor> {
        let p = Point::at(sigmas, index);
        let (a, s) = (p.alpha, p.sigma);
        Ok(match (self.predict_x0, self.prediction) {
            (true, PredictionType::Epsilon) => lincomb(&[(1.0 / a, sample), (-s / a, model_output)])?,
            (true, PredictionType::Sample) => model_output.clone(),
            (true, PredictionType::VPrediction) => lincomb(&[(a, sample), (-s, model_output)])?,
            (false, PredictionType::Epsilon) => model_output.clone(),
            (false, PredictionType::Sample) => lincomb(&[(1.0 / s, sample), (-a / s, model_output)])?,
            (false, PredictionType::VPrediction) => lincomb(&[(a, model_output), (s, sample)])?,
        })
    }

    /// The shared part of UniP and UniC: the first-order base update from point `s0` to `t`,
    /// the ratios r_k of the older points, and the right-hand side b of the order conditions.
    fn coefficients(&self, sigmas: &[f32], t: Point, s0: Point, older: &[usize], order: usize) -> Coeffs {
        let h = t.lambda - s0.lambda;
        let mut rks: Vec<f64> = older
            .iter()
            .map(|&si| (Point::at(sigmas, si).lambda - s0.lambda) / h)
            .collect();
        rks.push(1.0);
        let hh = if self.predict_x0 { -h } else { h };
        let h_phi_1 = hh.exp_m1();
        let b_h = match self.bh {
            UniPcSolverType::Bh1 => hh,
            UniPcSolverType::Bh2 => hh.exp_m1(),
        };
        // b_k = k! φ_{k+1}(hh) / B(h), with φ built by the recurrence φ_{k+1} = (φ_k − 1/k!)/hh.
        let mut h_phi_k = h_phi_1 / hh - 1.0;
        let mut factorial = 1.0;
        let mut rows = Vec::with_capacity(order);
        let mut b = Vec::with_capacity(order);
        for k in 1..=order {
            rows.push(rks.iter().map(|r| r.powi(k as i32 - 1)).collect::<Vec<f64>>());
            b.push(h_phi_k * factorial / b_h);
            factorial *= (k + 1) as f64;
            h_phi_k = h_phi_k / hh - 1.0 / factorial;
        }
        // x_t ≈ base_x·x + base_m·m0 − base_res·Σ ρ_k D_k
        let (base_x, base_m, base_res) = if self.predict_x0 {
            (t.sigma / s0.sigma, -t.alpha * h_phi_1, t.alpha * b_h)
        } else {
            (t.alpha / s0.alpha, -t.sigma * h_phi_1, t.sigma * b_h)
        };
        Coeffs {
            rks,
            rows,
            b,
            base_x,
            base_m,
            base_res,
        }
    }

    /// UniP (Algorithm 1) from step `i` to `i + 1`.
    fn predict(&self, sigmas: &[f32], i: usize, x: &Tensor, order: usize) -> Result<Tensor> {
        let n = self.outputs.len();
        let m0 = &self.outputs[n - 1];
        let older: Vec<usize> = (1..order).map(|k| i - k).collect();
        let c = self.coefficients(sigmas, Point::at(sigmas, i + 1), Point::at(sigmas, i), &older, order);
        let rhos: Vec<f64> = match order {
            1 => Vec::new(),
            2 => vec![0.5],
            _ => {
                let a: Vec<Vec<f64>> = c.rows[..order - 1].iter().map(|r| r[..order - 1].to_vec()).collect();
                solve(a, c.b[..order - 1].to_vec())?
            }
        };
        // D_k = (m_k − m0)/r_k
        let mut terms = vec![(c.base_x, x), (c.base_m, m0)];
        let mut m0_weight = 0.0;
        for (k, rho) in rhos.iter().enumerate() {
            let w = -c.base_res * rho / c.rks[k];
            terms.push((w, &self.outputs[n - 2 - k]));
            m0_weight -= w;
        }
        terms[1].0 += m0_weight;
        lincomb(&terms)
    }

    /// UniC (Algorithm 2): re-does the update from step `i − 1` to `i` with `model_t`, the
    /// converted output at step `i`, as an extra point.
    fn correct(&self, sigmas: &[f32], i: usize, model_t: &Tensor, last: &Tensor, order: usize) -> Result<Tensor> {
        let n = self.outputs.len();
        let m0 = &self.outputs[n - 1];
        let older: Vec<usize> = (1..order).map(|k| i - (k + 1)).collect();
        let c = self.coefficients(sigmas, Point::at(sigmas, i), Point::at(sigmas, i - 1), &older, order);
        let rhos = if order == 1 {
            vec![0.5]
        } else {
            solve(c.rows.clone(), c.b.clone())?
        };
        let mut terms = vec![(c.base_x, last), (c.base_m, m0)];
        let mut m0_weight = 0.0;
        for (k, rho) in rhos[..order - 1].iter().enumerate() {
            let w = -c.base_res * rho / c.rks[k];
            terms.push((w, &self.outputs[n - 2 - k]));
            m0_weight -= w;
        }
        // D1_t = model_t − m0, weighted by the last ρ.
        let w_t = -c.base_res * rhos[order - 1];
        terms.push((w_t, model_t));
        m0_weight -= w_t;
        terms[1].0 += m0_weight;
        lincomb(&terms)
    }
}

struct Coeffs {
    rks: Vec<f64>,
    rows: Vec<Vec<f64>>,
    b: Vec<f64>,
    base_x: f64,
    base_m: f64,
    base_res: f64,
}

/// Solves the small dense system `a·x = b` (Gaussian elimination, partial pivoting).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Result<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        let p = a[pivot][col];
        if p == 0.0 || !p.is_finite() {
            return Err(Error::invalid(
                "UniPC's order conditions are singular for this schedule (repeated sigmas?)",
            ));
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (top, below) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (row, b_row) in below.iter_mut().zip(col + 1..n) {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[b_row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Ok(x)
}

impl Solver for UniPc {
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
        let converted = self.convert(sigmas, model_output, sample, index)?;
        let use_corrector = index > 0 && !self.disable_corrector.contains(&(index - 1));
        let sample = match (&self.last, use_corrector) {
            (Some((last, order)), true) => self.correct(sigmas, index, &converted, last, *order)?,
            _ => sample.clone(),
        };
        if self.outputs.len() == self.order {
            self.outputs.remove(0);
        }
        self.outputs.push(converted);

        let mut order = self.order;
        if self.lower_order_final {
            order = order.min(n - index);
        }
        let order = order.min(self.lower_order_nums + 1);
        let prev = self.predict(sigmas, index, &sample, order)?;
        self.last = Some((sample, order));
        self.lower_order_nums = (self.lower_order_nums + 1).min(self.order);
        Ok(prev)
    }
}

#[cfg(test)]
mod tests {
    use super::solve;

    #[test]
    fn solves_and_detects_singular_systems() {
        let x = solve(vec![vec![2.0, 1.0], vec![1.0, 3.0]], vec![3.0, 5.0]).unwrap();
        assert!((x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12);
        assert!(solve(vec![vec![1.0, 1.0], vec![0.0, 0.0]], vec![1.0, 1.0]).is_err());
    }
}
