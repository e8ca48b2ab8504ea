//! The numbers every sampler starts from: the training noise schedule (betas, ᾱ, σ), the
//! inference timesteps, and the small pieces of numpy / torch arithmetic diffusers builds
//! them with.
//!
//! diffusers keeps its schedules in float32 tensors and derives inference schedules through
//! numpy in float64. Where that rounding shows in the outputs (a timestep the UNet sees, a
//! sigma picked by interpolation) we round at the same places, so our timesteps come out
//! identical and our sigmas agree to float32 precision.

use candle_core::Tensor;

use super::config::{BetaSchedule, PredictionType, SchedulerConfig, TimestepSpacing};
use crate::error::{Error, Result};

// ---------------------------------------------------------------------------------------
// numpy / torch look-alikes

/// `numpy.linspace(start, stop, num)`: `start + i * step`, with the last value pinned to
/// `stop`, and `[start]` when `num == 1`.
pub(crate) fn np_linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut out: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    out[num - 1] = stop;
    out
}

/// `numpy.arange(start, stop, step)` for floats: the length is `ceil((stop - start) / step)`
/// and element `i` is `start + i * delta`, where numpy's `delta` is `(start + step) - start`
/// (this is what decides which values round up in trailing spacing).
pub(crate) fn np_arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil();
    if len.is_nan() || len <= 0.0 {
        return Vec::new();
    }
    let len = len as usize;
    let delta = (start + step) - start;
    (0..len)
        .map(|i| if i == 0 { start } else { start + i as f64 * delta })
        .collect()
}

/// `torch.linspace(start, end, steps, dtype=float32)` as its CPU kernel computes it: the first
/// half counted up from `start`, the second half down from `end`.
fn torch_linspace_f32(start: f64, end: f64, steps: usize) -> Vec<f32> {
    let (start, end) = (start as f32, end as f32);
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let halfway = steps / 2;
    (0..steps)
        .map(|i| {
            if i < halfway {
                start + step * i as f32
            } else {
                end - step * (steps - i - 1) as f32
            }
        })
        .collect()
}

/// `numpy.interp(x, arange(len(fp)), fp)`: piecewise-linear, clamped at both ends.
pub(crate) fn interp(x: f64, fp: &[f32]) -> f64 {
    let n = fp.len();
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    let last = (n - 1) as f64;
    if x <= 0.0 {
        return fp[0] as f64;
    }
    if x >= last {
        return fp[n - 1] as f64;
    }
    let j = x.floor() as usize;
    if j as f64 == x {
        return fp[j] as f64;
    }
    let (y0, y1) = (fp[j] as f64, fp[j + 1] as f64);
    (y1 - y0) * (x - j as f64) + y0
}

/// `torch.cumprod` on a float32 CPU tensor: accumulated in float64, each output rounded.
fn cumprod_f32(values: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    values
        .iter()
        .map(|&v| {
            acc *= v as f64;
            acc as f32
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The training noise schedule

/// The squared-cosine ᾱ(t) of Nichol & Dhariwal ("Improved DDPM", eq. 17), the shape
/// `squaredcos_cap_v2` discretises.
fn alpha_bar_cosine(t: f64) -> f64 {
    ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0).cos().powi(2)
}

/// `exp` betas (HeunDiscreteScheduler only): ᾱ(t) = e^(−12t).
fn alpha_bar_exp(t: f64) -> f64 {
    (t * -12.0).exp()
}

/// Betas from a continuous ᾱ(t): βᵢ = 1 − ᾱ((i+1)/T) / ᾱ(i/T), capped at 0.999 so the last
/// steps never destroy the signal completely (diffusers' `betas_for_alpha_bar`).
fn betas_for_alpha_bar(n: usize, alpha_bar: fn(f64) -> f64) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t1 = i as f64 / n as f64;
            let t2 = (i + 1) as f64 / n as f64;
            (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999) as f32
        })
        .collect()
}

/// The training betas, float32 as diffusers stores them.
fn betas(cfg: &SchedulerConfig) -> Vec<f32> {
    let n = cfg.num_train_timesteps;
    if let Some(trained) = &cfg.trained_betas {
        return trained.iter().map(|&b| b as f32).collect();
    }
    match cfg.beta_schedule {
        Some(BetaSchedule::Linear) | None => torch_linspace_f32(cfg.beta_start, cfg.beta_end, n),
        Some(BetaSchedule::ScaledLinear) => torch_linspace_f32(cfg.beta_start.sqrt(), cfg.beta_end.sqrt(), n)
            .into_iter()
            .map(|b| b * b)
            .collect(),
        Some(BetaSchedule::SquaredCosCapV2) => betas_for_alpha_bar(n, alpha_bar_cosine),
        Some(BetaSchedule::Exp) => betas_for_alpha_bar(n, alpha_bar_exp),
    }
}

/// Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed" (Algorithm 1):
/// shift and rescale √ᾱ so the last timestep has exactly zero SNR while the first keeps its
/// value, then turn the result back into betas.
fn rescale_zero_terminal_snr(betas: &[f32]) -> Vec<f32> {
    let alphas: Vec<f32> = betas.iter().map(|b| 1.0 - b).collect();
    let mut sqrt_ab: Vec<f32> = cumprod_f32(&alphas).iter().map(|a| a.sqrt()).collect();
    let first = sqrt_ab[0];
    let last = sqrt_ab[sqrt_ab.len() - 1];
    let scale = first / (first - last);
    for v in &mut sqrt_ab {
        *v = (*v - last) * scale;
    }
    let ab: Vec<f32> = sqrt_ab.iter().map(|v| v * v).collect();
    let mut out = Vec::with_capacity(ab.len());
    out.push(1.0 - ab[0]);
    for i in 1..ab.len() {
        out.push(1.0 - ab[i] / ab[i - 1]);
    }
    out
}

/// ᾱ_t = Π (1 − β), float32.
///
/// `pin_zero_snr_end` mirrors the samplers (Euler, Euler-a, DPM-Solver, UniPC) that, after a
/// zero-terminal-SNR rescale, set the last ᾱ to 2⁻²⁴ so σ stays finite there.
pub(crate) fn alphas_cumprod(cfg: &SchedulerConfig, pin_zero_snr_end: bool) -> Vec<f32> {
    let mut betas = betas(cfg);
    if cfg.rescale_betas_zero_snr {
        betas = rescale_zero_terminal_snr(&betas);
    }
    let alphas: Vec<f32> = betas.iter().map(|b| 1.0 - b).collect();
    let mut ac = cumprod_f32(&alphas);
    if let Some(last) = ac.last_mut().filter(|_| cfg.rescale_betas_zero_snr && pin_zero_snr_end) {
        *last = 2f32.powi(-24);
    }
    ac
}

/// σ_t = √((1 − ᾱ_t) / ᾱ_t), the noise level of the variance-exploding view (Karras et al.),
/// ascending in t, float32.
pub(crate) fn train_sigmas(alphas_cumprod: &[f32]) -> Vec<f32> {
    alphas_cumprod.iter().map(|&a| ((1.0 - a) / a).sqrt()).collect()
}

/// ln σ_t, float32 (numpy's `np.log` on the float32 sigma table).
pub(crate) fn log_sigmas(sigmas: &[f32]) -> Vec<f32> {
    sigmas.iter().map(|s| s.ln()).collect()
}

// ---------------------------------------------------------------------------------------
// Inference timesteps

/// How many points a spacing is laid over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `steps` points (DDIM, PNDM, Euler, Euler-a, LMS, Heun).
    Steps,
    /// `steps + 1` points with the last (t = 0 end) dropped (DPM-Solver, UniPC), whose
    /// `linspace` and `leading` therefore never land on timestep 0.
    StepsPlusOneDropLast,
}

/// Inference timesteps, descending, as float64 (not yet rounded to integers), for the three
/// spacings of Lin et al. Table 2. `last_timestep` is the train-timestep count, or less when
/// DPM-Solver clips the low-SNR end (`lambda_min_clipped`).
pub(crate) fn spaced_timesteps(
    spacing: TimestepSpacing,
    layout: Layout,
    steps: usize,
    num_train: usize,
    last_timestep: usize,
    steps_offset: usize,
) -> Vec<f64> {
    let points = match layout {
        Layout::Steps => steps,
        Layout::StepsPlusOneDropLast => steps + 1,
    };
    let mut ts: Vec<f64> = match spacing {
        TimestepSpacing::Linspace => {
            let mut v = np_linspace(0.0, last_timestep as f64 - 1.0, points);
            v.reverse();
            v
        }
        TimestepSpacing::Leading => {
            let ratio = last_timestep / points;
            (0..points)
                .rev()
                .map(|i| (i * ratio) as f64 + steps_offset as f64)
                .collect()
        }
        TimestepSpacing::Trailing => {
            // The step is always T/steps, even when DPM-Solver clipped the end.
            let ratio = num_train as f64 / steps as f64;
            np_arange(last_timestep as f64, 0.0, -ratio)
                .into_iter()
                .map(|t| t.round_ties_even() - 1.0)
                .collect()
        }
    };
    if layout == Layout::StepsPlusOneDropLast && spacing != TimestepSpacing::Trailing {
        ts.pop();
    }
    ts
}

// ---------------------------------------------------------------------------------------
// Sigma schedules

/// Karras et al. 2022 ("Elucidating the Design Space…", eq. 5, ρ = 7): `steps` sigmas from
/// σ_max down to σ_min, evenly spaced in σ^(1/ρ).
pub(crate) fn karras_sigmas(sigma_min: f64, sigma_max: f64, steps: usize) -> Vec<f64> {
    const RHO: f64 = 7.0;
    let min_inv = sigma_min.powf(1.0 / RHO);
    let max_inv = sigma_max.powf(1.0 / RHO);
    np_linspace(0.0, 1.0, steps)
        .into_iter()
        .map(|r| (max_inv + r * (min_inv - max_inv)).powf(RHO))
        .collect()
}

/// The (fractional) training timestep whose σ is `sigma`: linear interpolation in ln σ
/// between the two neighbouring training timesteps, clamped to the table (diffusers'
/// `_sigma_to_t`).
pub(crate) fn sigma_to_t(sigma: f64, log_sigmas: &[f32]) -> f64 {
    let n = log_sigmas.len();
    if n < 2 {
        return 0.0;
    }
    let log_sigma = sigma.max(1e-10).ln();
    let low_idx = log_sigmas
        .iter()
        .rposition(|&l| log_sigma - l as f64 >= 0.0)
        .unwrap_or(0)
        .min(n - 2);
    let low = log_sigmas[low_idx] as f64;
    let high = log_sigmas[low_idx + 1] as f64;
    let w = ((low - log_sigma) / (low - high)).clamp(0.0, 1.0);
    (1.0 - w) * low_idx as f64 + w * (low_idx + 1) as f64
}

/// Rounds to float32 and back: where diffusers stores a value in a float32 tensor.
pub(crate) fn f32_round(v: f64) -> f64 {
    v as f32 as f64
}

/// `init_noise_sigma` of the σ-parameterised samplers (Euler, Euler-a, LMS, Heun): the
/// largest σ for `linspace`/`trailing`, √(σ_max² + 1) for `leading`, whose first timestep
/// sits below T − 1.
pub(crate) fn sigma_init_noise(sigmas: &[f32], spacing: TimestepSpacing) -> f64 {
    let max = sigmas.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    match spacing {
        TimestepSpacing::Linspace | TimestepSpacing::Trailing => max as f64,
        TimestepSpacing::Leading => (max * max + 1.0).sqrt() as f64,
    }
}

// ---------------------------------------------------------------------------------------
// Tensor arithmetic

/// Σ cᵢ·xᵢ, computed in the tensors' own dtype on their device.
pub(crate) fn lincomb(terms: &[(f64, &Tensor)]) -> Result<Tensor> {
    let mut iter = terms.iter();
    let Some(&(c0, t0)) = iter.next() else {
        return Err(Error::invalid("empty linear combination"));
    };
    let mut acc = t0.affine(c0, 0.0)?;
    for &(c, t) in iter {
        acc = (acc + t.affine(c, 0.0)?)?;
    }
    Ok(acc)
}

/// `tensor · c` for a float32 scalar, as torch multiplies by a 0-d float32 tensor.
pub(crate) fn mul32(t: &Tensor, c: f32) -> Result<Tensor> {
    Ok(t.affine(c as f64, 0.0)?)
}

/// `tensor / c` as a true division by a float32 scalar (not a multiplication by 1/c), so the
/// rounding is torch's.
pub(crate) fn div32(t: &Tensor, c: f32) -> Result<Tensor> {
    let c = Tensor::new(c, t.device())?.to_dtype(t.dtype())?;
    Ok(t.broadcast_div(&c)?)
}

/// The denoised estimate x̂₀ for samplers that work in σ (Karras et al.'s x = x₀ + σ·ε view,
/// where the UNet sees x/√(σ²+1)): ε-prediction gives x − σ·ε, v-prediction
/// −σ/√(σ²+1)·v + x/(σ²+1), sample-prediction x̂₀ itself.
///
/// The operations and their float32 scalars follow diffusers one for one: near σ = 0 and at
/// very large σ (zero terminal SNR) the result is a difference of nearly equal numbers, and
/// only the same rounding gives the same answer.
pub(crate) fn sigma_pred_original(
    prediction: PredictionType,
    model_output: &Tensor,
    sample: &Tensor,
    sigma: f32,
) -> Result<Tensor> {
    Ok(match prediction {
        PredictionType::Epsilon => (sample - mul32(model_output, sigma)?)?,
        PredictionType::VPrediction => {
            let s2 = sigma * sigma + 1.0;
            (mul32(model_output, -sigma / s2.sqrt())? + div32(sample, s2)?)?
        }
        PredictionType::Sample => model_output.clone(),
    })
}

/// The ODE slope (x − x̂₀)/σ.
pub(crate) fn sigma_derivative(sample: &Tensor, x0: &Tensor, sigma: f32) -> Result<Tensor> {
    div32(&(sample - x0)?, sigma)
}

/// x + d·dt
pub(crate) fn euler_update(sample: &Tensor, derivative: &Tensor, dt: f32) -> Result<Tensor> {
    Ok((sample + mul32(derivative, dt)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_and_arange_follow_numpy() {
        assert_eq!(np_linspace(0.0, 999.0, 1), vec![0.0]);
        assert_eq!(np_linspace(0.0, 1.0, 3), vec![0.0, 0.5, 1.0]);
        assert_eq!(np_arange(1000.0, 0.0, -250.0), vec![1000.0, 750.0, 500.0, 250.0]);
        // 1000/6 does not divide evenly; numpy still yields exactly six values.
        assert_eq!(np_arange(1000.0, 0.0, -1000.0 / 6.0).len(), 6);
    }

    #[test]
    fn interp_clamps_and_hits_knots() {
        let fp = [1.0f32, 3.0, 7.0];
        assert_eq!(interp(-1.0, &fp), 1.0);
        assert_eq!(interp(0.5, &fp), 2.0);
        assert_eq!(interp(1.0, &fp), 3.0);
        assert_eq!(interp(5.0, &fp), 7.0);
    }

    #[test]
    fn sigma_to_t_inverts_the_table() {
        let logs = [0.0f32, 1.0, 2.0, 3.0];
        assert!((sigma_to_t(1.5f64.exp(), &logs) - 1.5).abs() < 1e-12);
        assert_eq!(sigma_to_t(100.0, &logs), 3.0);
        assert_eq!(sigma_to_t(0.1, &logs), 0.0);
    }

    #[test]
    fn karras_runs_from_max_to_min() {
        let s = karras_sigmas(0.03, 14.6, 5);
        assert!((s[0] - 14.6).abs() < 1e-12 && (s[4] - 0.03).abs() < 1e-12);
        assert!(s.windows(2).all(|w| w[0] > w[1]));
    }
}
