//! PNDM: Liu, Ren, Lin & Zhao, "Pseudo Numerical Methods for Diffusion Models on Manifolds"
//! (ICLR 2022). Each update is the paper's transfer φ (eq. 11), fed with a linear-multistep
//! combination of recent noise predictions (PLMS, eq. 12); without `skip_prk_steps` the first
//! three updates are pseudo Runge–Kutta steps (PRK, eq. 13) instead.
//!
//! Matches diffusers' `PNDMScheduler` step for step, including its bookkeeping:
//! - with `skip_prk_steps` (every Stable Diffusion config) the schedule lists the second
//!   timestep twice, so the UNet runs steps + 1 times: the first update is an Euler-like
//!   φ step, the second re-does it from the same sample with the average of both predictions
//!   (a second-order start), then Adams–Bashforth of order 2, 3, 4;
//! - without it, 12 PRK evaluations over the last four spaced timesteps come first
//!   (steps + 9 evaluations, at least 4 steps, as diffusers requires).

use std::path::Path;

use candle_core::Tensor;

use super::common::{Parts, Schedule, Solver};
use super::config::{PredictionType, SamplerClass, SchedulerConfig, TimestepSpacing};
use super::ddim::integer_timesteps;
use super::schedule::{self, div32, mul32};
use super::{ClassInfo, NoiseSource};
use crate::error::{Error, Result};

#[rustfmt::skip]
pub(super) const CLASS: ClassInfo = ClassInfo {
    class: SamplerClass::Pndm,
    name: "PNDMScheduler",
    init_keys: &[
        "skip_prk_steps", "set_alpha_to_one", "prediction_type", "timestep_spacing",
        "steps_offset",
    ],
    defaults: |cfg| cfg.timestep_spacing = TimestepSpacing::Leading,
    build,
};

struct Pndm {
    /// How many leading entries of the timesteps are PRK evaluations.
    prk_len: usize,
    alphas_cumprod: Vec<f32>,
    final_alpha_cumprod: f32,
    /// `T // steps`.
    step_ratio: i64,
    prediction: PredictionType,
    /// Update counter (diffusers' `counter`).
    counter: usize,
    /// Recent noise predictions, oldest first (at most 4 kept).
    ets: Vec<Tensor>,
    /// PRK: the weighted sum of the current Runge–Kutta stage outputs.
    prk_sum: Option<Tensor>,
    /// The sample the current multi-evaluation update started from.
    cur_sample: Option<Tensor>,
}

fn build(cfg: &SchedulerConfig, steps: usize, path: &Path) -> Result<Parts> {
    let alphas_cumprod = schedule::alphas_cumprod(cfg, false);
    let final_alpha_cumprod = if cfg.set_alpha_to_one { 1.0 } else { alphas_cumprod[0] };
    let ac_for_noising = alphas_cumprod.clone();
    let step_ratio = (cfg.num_train_timesteps / steps) as i64;
    let (prk, plms) = pndm_timesteps(cfg, steps, step_ratio, path)?;
    let timesteps: Vec<f64> = prk.iter().chain(&plms).map(|&t| t as f64).collect();
    let pndm = Pndm {
        prk_len: prk.len(),
        alphas_cumprod,
        final_alpha_cumprod,
        step_ratio,
        prediction: cfg.prediction_type,
        counter: 0,
        ets: Vec::new(),
        prk_sum: None,
        cur_sample: None,
    };
    pndm.check_reachable(&timesteps, path)?;
    Ok(Parts::new(Schedule::alpha_bar(timesteps, ac_for_noising), pndm))
}

/// The PRK timesteps (none with `skip_prk_steps`) and the PLMS ones, in evaluation order.
fn pndm_timesteps(cfg: &SchedulerConfig, steps: usize, step_ratio: i64, path: &Path) -> Result<(Vec<i64>, Vec<i64>)> {
    // diffusers' `_timesteps`: the spaced timesteps, ascending.
    let mut spaced: Vec<i64> = integer_timesteps(cfg, steps, path)?
        .into_iter()
        .map(|t| t as i64)
        .collect();
    spaced.reverse();
    if cfg.skip_prk_steps {
        return Ok((Vec::new(), plms_only_timesteps(&spaced)));
    }
    if steps < 4 {
        return Err(Error::invalid(format!(
            "PNDM with skip_prk_steps false needs at least 4 steps (got {steps}); \
             its Runge-Kutta warm-up spans the last four timesteps"
        )));
    }
    Ok(prk_and_plms_timesteps(&spaced, step_ratio / 2))
}

impl Pndm {
    /// The second PLMS update looks one step *above* its timestep; make sure that is still a
    /// training timestep (with odd spacings it need not be), rather than failing mid-run.
    fn check_reachable(&self, timesteps: &[f64], path: &Path) -> Result<()> {
        let last = self.alphas_cumprod.len() as i64 - 1;
        let looked_at = match (self.prk_len, timesteps.get(1)) {
            (0, Some(&t)) => t as i64 + self.step_ratio,
            _ => return Ok(()),
        };
        if looked_at > last {
            return Err(Error::config(
                path,
                "timestep_spacing",
                format!(
                    "PNDM's second step would look at timestep {looked_at}, past the last \
                     training timestep {last}"
                ),
            ));
        }
        Ok(())
    }

    fn alpha(&self, t: i64) -> Result<f32> {
        if t < 0 {
            return Ok(self.final_alpha_cumprod);
        }
        self.alphas_cumprod
            .get(t as usize)
            .copied()
            .ok_or_else(|| Error::invalid(format!("PNDM timestep {t} is outside the schedule")))
    }

    /// The transfer φ of the paper (eq. 11): from `sample` at `t` to `prev_t` given a noise
    /// prediction (a v-prediction is first turned into one).
    fn prev_sample(&self, sample: &Tensor, t: i64, prev_t: i64, model_output: &Tensor) -> Result<Tensor> {
        // float32 scalars and operation order as in diffusers, so the rounding matches.
        let a_t = self.alpha(t)?;
        let a_prev = self.alpha(prev_t)?;
        let (b_t, b_prev) = (1.0 - a_t, 1.0 - a_prev);
        let eps = match self.prediction {
            PredictionType::VPrediction => (mul32(model_output, a_t.sqrt())? + mul32(sample, b_t.sqrt())?)?,
            _ => model_output.clone(),
        };
        let sample_coeff = (a_prev / a_t).sqrt();
        let denom = a_t * b_prev.sqrt() + (a_t * b_t * a_prev).sqrt();
        let update = div32(&mul32(&eps, a_prev - a_t)?, denom)?;
        Ok((mul32(sample, sample_coeff)? - update)?)
    }

    /// One pseudo Runge–Kutta stage (eq. 13): four evaluations per update, combined with
    /// weights 1/6, 1/3, 1/3, 1/6; stages 2 and 3 restart from the update's first sample.
    fn step_prk(&mut self, timesteps: &[f64], model_output: &Tensor, t: i64, sample: &Tensor) -> Result<Tensor> {
        let half = self.step_ratio / 2;
        let prev_t = t - if self.counter % 2 == 1 { 0 } else { half };
        let t = timesteps[self.counter / 4 * 4] as i64;
        let add = |acc: &Option<Tensor>, w: f32| -> Result<Tensor> {
            let term = mul32(model_output, w)?;
            Ok(match acc {
                Some(a) => (a + term)?,
                None => term,
            })
        };
        let mut eps = model_output.clone();
        match self.counter % 4 {
            0 => {
                self.prk_sum = Some(add(&self.prk_sum, 1.0 / 6.0)?);
                self.ets.push(model_output.clone());
                self.cur_sample = Some(sample.clone());
            }
            1 | 2 => self.prk_sum = Some(add(&self.prk_sum, 1.0 / 3.0)?),
            _ => {
                eps = add(&self.prk_sum, 1.0 / 6.0)?;
                self.prk_sum = None;
            }
        }
        let from = self.cur_sample.clone().unwrap_or_else(|| sample.clone());
        self.prev_sample(&from, t, prev_t, &eps)
    }

    /// One PLMS update (eq. 12): Adams–Bashforth on the noise predictions, order growing with
    /// the history; the skip-PRK start is described in the module docs.
    fn step_plms(&mut self, model_output: &Tensor, t: i64, sample: &Tensor) -> Result<Tensor> {
        let mut t = t;
        let mut prev_t = t - self.step_ratio;
        if self.counter != 1 {
            if self.ets.len() > 3 {
                self.ets.remove(0);
            }
            self.ets.push(model_output.clone());
        } else {
            prev_t = t;
            t += self.step_ratio;
        }
        let e = &self.ets;
        let n = e.len();
        let mut from = sample.clone();
        let eps = if n == 1 && self.counter == 0 {
            self.cur_sample = Some(sample.clone());
            model_output.clone()
        } else if n == 1 && self.counter == 1 {
            if let Some(s) = self.cur_sample.take() {
                from = s;
            }
            div32(&(model_output + &e[0])?, 2.0)?
        } else if n == 2 {
            div32(&(mul32(&e[1], 3.0)? - &e[0])?, 2.0)?
        } else if n == 3 {
            let s = ((mul32(&e[2], 23.0)? - mul32(&e[1], 16.0)?)? + mul32(&e[0], 5.0)?)?;
            div32(&s, 12.0)?
        } else {
            let s = (mul32(&e[n - 1], 55.0)? - mul32(&e[n - 2], 59.0)?)?;
            let s = ((s + mul32(&e[n - 3], 37.0)?)? - mul32(&e[n - 4], 9.0)?)?;
            mul32(&s, (1.0f64 / 24.0) as f32)?
        };
        self.prev_sample(&from, t, prev_t, &eps)
    }
}

/// PLMS with `skip_prk_steps`: the spaced timesteps descending, with the second one repeated.
fn plms_only_timesteps(ascending: &[i64]) -> Vec<i64> {
    let n = ascending.len();
    let mut v: Vec<i64> = ascending[..n.saturating_sub(1)].to_vec();
    if n >= 2 {
        v.push(ascending[n - 2]);
    }
    v.extend_from_slice(&ascending[n.saturating_sub(1)..]);
    v.reverse();
    v
}

/// PRK evaluations over the last four spaced timesteps (each stage at t, t + ratio/2 twice,
/// and the next t) followed by the remaining PLMS timesteps.
fn prk_and_plms_timesteps(ascending: &[i64], half_ratio: i64) -> (Vec<i64>, Vec<i64>) {
    let n = ascending.len();
    let last4 = &ascending[n - 4..];
    let base: Vec<i64> = last4.iter().flat_map(|&t| [t, t + half_ratio]).collect();
    let doubled: Vec<i64> = base[..base.len() - 1].iter().flat_map(|&t| [t, t]).collect();
    let mut prk = doubled[1..doubled.len() - 1].to_vec();
    prk.reverse();
    let mut plms = ascending[..n - 3].to_vec();
    plms.reverse();
    (prk, plms)
}

impl Solver for Pndm {
    fn step(
        &mut self,
        sched: &Schedule,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        _noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        let t = sched.timesteps[index] as i64;
        let out = if self.counter < self.prk_len {
            self.step_prk(&sched.timesteps, model_output, t, sample)?
        } else {
            self.step_plms(model_output, t, sample)?
        };
        self.counter += 1;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_prk_repeats_the_second_timestep() {
        assert_eq!(plms_only_timesteps(&[1, 251, 501, 751]), vec![751, 501, 501, 251, 1]);
        assert_eq!(plms_only_timesteps(&[1]), vec![1]);
    }

    #[test]
    fn prk_schedule_has_twelve_stages() {
        let (prk, plms) = prk_and_plms_timesteps(&[0, 250, 500, 750], 125);
        assert_eq!(prk, vec![750, 625, 625, 500, 500, 375, 375, 250, 250, 125, 125, 0]);
        assert_eq!(plms, vec![0]);
    }
}
