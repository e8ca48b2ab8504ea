//! A look at the image while it forms. With a tiny autoencoder (TAESD) installed for the
//! model's family, the latents decoded by it: the picture at full size, close to the final
//! one. Without, latents → RGB through a fixed linear map per model family (the well-known
//! approximation factors), an eighth of the size, no network.

use std::time::{Duration, Instant};

use candle_core::{DType, Tensor};

use crate::error::Result;
use crate::model::{LoadedModel, PipelineKind};
use crate::output::RgbImage;

/// A TAESD preview is made when the time since the last one is at least this many times
/// what it cost, so previews take at most a fifth of the sampling time (on a CPU a 512²
/// TAESD decode is a fraction of a UNet step, on a GPU nearly free: every step either way;
/// a slow CPU at 1024² gets one every few steps instead of doubling the run).
const TAESD_SPACING: u32 = 4;

/// When the next TAESD preview is due.
#[derive(Default)]
pub struct Pacer {
    /// What the last TAESD preview cost, and when it was done.
    last: Option<(Duration, Instant)>,
}

impl Pacer {
    fn due(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|(cost, done)| now.duration_since(done) >= cost * TAESD_SPACING)
    }
}

/// The preview of `latents` [1, C, h, w] after a step: the TAESD's picture when the model has
/// one (`None` on steps where one is not due: the last stays shown), else the linear map's.
pub fn preview(model: &LoadedModel, latents: &Tensor, pacer: &mut Pacer) -> Result<Option<RgbImage>> {
    let Some(taesd) = model.taesd.decoder() else {
        return latent_preview(latents, model.kind());
    };
    let started = Instant::now();
    if !pacer.due(started) {
        return Ok(None);
    }
    let image = super::to_rgb8(&taesd.decode_latents(&latents.get(0)?.unsqueeze(0)?)?)?;
    let done = Instant::now();
    let cost = done - started;
    tracing::debug!(ms = cost.as_secs_f64() * 1e3, "TAESD preview");
    pacer.last = Some((cost, done));
    Ok(Some(image))
}

/// RGB contribution of each of the 4 latent channels, SD 1.x / 2.x.
const SD_FACTORS: [[f32; 3]; 4] = [
    [0.298, 0.207, 0.208],
    [0.187, 0.286, 0.173],
    [-0.158, 0.189, 0.264],
    [-0.184, -0.271, -0.473],
];

/// RGB contribution of each of the 4 latent channels, SDXL.
const SDXL_FACTORS: [[f32; 3]; 4] = [
    [0.3920, 0.4054, 0.4549],
    [-0.2634, -0.0196, 0.0653],
    [0.0568, 0.1687, -0.0755],
    [-0.3112, -0.2359, -0.2076],
];

/// Approximates the image of latents [1, 4, h, w]; the preview is h×w (an eighth of the
/// final size), which the GUI scales up.
pub fn latent_preview(latents: &Tensor, kind: PipelineKind) -> Result<Option<RgbImage>> {
    let (_, c, h, w) = latents.dims4()?;
    if c != 4 {
        return Ok(None);
    }
    let factors = match kind {
        PipelineKind::StableDiffusion => &SD_FACTORS,
        PipelineKind::StableDiffusionXl => &SDXL_FACTORS,
    };
    let lat: Vec<f32> = latents.get(0)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let plane = h * w;
    let mut data = Vec::with_capacity(plane * 3);
    for p in 0..plane {
        let rgb: [f32; 3] = std::array::from_fn(|k| (0..4).map(|ch| lat[ch * plane + p] * factors[ch][k]).sum());
        data.extend(rgb.map(|v| (((v + 1.0) * 0.5).clamp(0.0, 1.0) * 255.0).round() as u8));
    }
    Ok(Some(RgbImage {
        width: w as u32,
        height: h as u32,
        data,
    }))
}
