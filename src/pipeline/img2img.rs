//! Starting from a picture: diffusers' `StableDiffusionImg2ImgPipeline` (and the SDXL one),
//! and `StableDiffusionInpaintPipeline` for regular and inpainting (9-channel) models.
//!
//! - **img2img**: the picture is encoded (a sample of the VAE's posterior, drawn from the
//!   image's own generator), noised to the level where the last ⌊steps·strength⌋ steps begin
//!   (each sampler's own `add_noise`), and the sampler walks from there
//!   (`set_begin_index`).
//! - **inpainting, regular model**: the same start (or pure noise at strength 1); after every
//!   step the latents outside the mask are replaced by the original re-noised to the next
//!   step's level, so only the masked part is redrawn.
//! - **inpainting model**: the UNet also reads the mask and the latents of the picture with
//!   the masked part greyed out, 2·C + 1 channels in all.
//!
//! The generator is drawn in diffusers' order — the picture's posterior sample, the noise,
//! then the masked picture's posterior sample (drawn even for a regular model, which does not
//! use it) — so `--rng cpu` gives diffusers' pictures with every sampler, ancestral ones too.

use candle_core::{DType, Tensor};

use super::noise::Noise;
use crate::error::{Error, Result};
use crate::model::LoadedModel;
use crate::model::vae_encoder::{Posterior, VaeEncoder, rgb8_to_tensor};
use crate::output::RgbImage;
use crate::recipe::Recipe;
use crate::schedulers::Scheduler;
use crate::source::SourceImages;
use crate::source::prepare::{Prepared, latent_mask, paste_back, prepare};

/// The first entry of a `steps`-step schedule that img2img runs: diffusers' `t_start · order`,
/// with `t_start = steps − min(⌊steps·strength⌋, steps)`.
pub(super) fn begin_index(steps: usize, strength: f64, order: usize) -> usize {
    let run = ((steps as f64 * strength) as usize).min(steps);
    (steps - run) * order
}

/// img2img from latents as they are (diffusers' img2img given 4-channel latents as its
/// `image`: no encoding, no posterior draw): noised to the begin entry with fresh noise.
pub(super) fn begin_from_latents(
    scheduler: &mut dyn Scheduler,
    steps: usize,
    strength: f64,
    latents: Tensor,
    noise: &mut Noise,
) -> Result<Begun> {
    let begin = begin_index(steps, strength, scheduler.order());
    scheduler.begin_at(begin)?;
    let eps = noise.randn(latents.dims(), latents.device())?;
    Ok(Begun {
        latents: scheduler.add_noise(&latents, &eps, begin)?,
        begin,
        guide: Guide::default(),
    })
}

/// A job's start, prepared once for every image of its batch.
pub(super) struct Start {
    prepared: Option<Prepared>,
    encoder: VaeEncoder,
    /// The init picture's latent distribution (`None` for txt2img on an inpainting model).
    posterior: Option<Posterior>,
    /// Inpainting: the mask at latent size, [1, 1, h, w], 1 = repaint.
    mask: Option<Tensor>,
    /// Inpainting models: what the masked picture's latents are drawn from.
    masked: Option<MaskedPicture>,
    strength: f64,
}

enum MaskedPicture {
    /// Sampled from its posterior with the image's generator (diffusers' inpainting pipeline).
    Sampled(Posterior),
    /// Fixed latents: txt2img on an inpainting model (a grey picture, all to be painted).
    Fixed(Tensor),
}

/// Where one image's sampling starts, and what guides it at every step.
pub(super) struct Begun {
    pub latents: Tensor,
    /// The first entry of the sampler's timesteps that is run.
    pub begin: usize,
    pub guide: Guide,
}

#[derive(Default)]
pub(super) struct Guide {
    /// Regular models inpainting: the original's latents, the start noise and the mask.
    pub blend: Option<Blend>,
    /// Inpainting models: [1, 1 + C, h, w] appended to the UNet input (mask, masked latents).
    pub extra_input: Option<Tensor>,
}

pub(super) struct Blend {
    original: Tensor,
    noise: Tensor,
    mask: Tensor,
}

impl Blend {
    /// After the step at entry `index`: the original noised to the next entry's level (or
    /// clean after the last) outside the mask, the sampler's latents inside.
    pub fn apply(&self, scheduler: &dyn Scheduler, latents: &Tensor, index: usize) -> Result<Tensor> {
        let original = if index + 1 < scheduler.timesteps().len() {
            scheduler.add_noise(&self.original, &self.noise, index + 1)?
        } else {
            self.original.clone()
        };
        let keep = (1.0 - &self.mask)?;
        Ok((original.broadcast_mul(&keep)? + latents.broadcast_mul(&self.mask)?)?)
    }
}

impl Start {
    /// Prepares the start of `recipe` (already validated): `source` for img2img and
    /// inpainting; `None` on an inpainting model means txt2img. Encodes the picture once.
    pub fn new(model: &LoadedModel, recipe: &Recipe, source: Option<&SourceImages>) -> Result<Start> {
        let encoder = model.load_vae_encoder()?;
        let device = model.options.device.clone();
        let (w, h) = (recipe.width, recipe.height);
        let factor = model.vae_scale_factor();
        let mut start = Start {
            prepared: None,
            posterior: None,
            mask: None,
            masked: None,
            strength: recipe.strength,
            encoder,
        };
        let Some(source) = source else {
            // txt2img on an inpainting model: A1111's way, the whole (grey) picture masked.
            let grey = Tensor::zeros((1, 3, h as usize, w as usize), DType::F32, &device)?;
            start.mask = Some(Tensor::ones(
                (1, 1, h as usize / factor, w as usize / factor),
                DType::F32,
                &device,
            )?);
            start.masked = Some(MaskedPicture::Fixed(start.encoder.encode_mean(&grey)?));
            start.strength = 1.0;
            return Ok(start);
        };
        let prepared = prepare(source, w, h, recipe.resize_mode, recipe.mask_blur)?;
        let pixels = rgb8_to_tensor(w as usize, h as usize, &prepared.image.data, &device)?;
        let hard = prepared.hard_mask().or_else(|| {
            // img2img on an inpainting model: everything may change.
            model.is_inpainting().then(|| vec![1.0; (w * h) as usize])
        });
        if let Some(hard) = &hard {
            let small = latent_mask(hard, w as usize, h as usize, factor);
            if small.iter().all(|&v| v == 0.0) {
                return Err(Error::invalid(
                    "the mask covers nothing to repaint (paint white where the picture should change)",
                ));
            }
            start.mask = Some(Tensor::from_vec(
                small,
                (1, 1, h as usize / factor, w as usize / factor),
                &device,
            )?);
            if model.is_inpainting() {
                // diffusers: `init_image * (mask < 0.5)`, the masked part grey (0).
                let keep: Vec<f32> = hard.iter().map(|&m| if m < 0.5 { 1.0 } else { 0.0 }).collect();
                let keep = Tensor::from_vec(keep, (1, 1, h as usize, w as usize), &device)?;
                let masked = pixels.broadcast_mul(&keep)?;
                start.masked = Some(MaskedPicture::Sampled(start.encoder.encode(&masked)?));
            }
        }
        start.posterior = Some(start.encoder.encode(&pixels)?);
        start.prepared = Some(prepared);
        Ok(start)
    }

    fn begin(&self, steps: usize, order: usize) -> usize {
        begin_index(steps, self.strength, order)
    }

    /// One image's start latents from its own generator, in diffusers' order of draws.
    pub fn begin_image(
        &self,
        model: &LoadedModel,
        scheduler: &mut dyn Scheduler,
        steps: usize,
        noise: &mut Noise,
    ) -> Result<Begun> {
        let begin = self.begin(steps, scheduler.order());
        scheduler.begin_at(begin)?;
        let inpainting = self.mask.is_some();
        let full_strength = self.strength == 1.0;
        // diffusers encodes the picture when it starts from it, and (regular models) for the
        // blending at every step.
        let needs_original = self.posterior.is_some() && (!full_strength || !model.is_inpainting() || !inpainting);
        let original = if needs_original {
            let posterior = self.posterior.as_ref().expect("checked");
            Some(self.sample(posterior, noise)?)
        } else {
            None
        };
        let device = &model.options.device;
        let shape = self.encoder_latent_shape(model)?;
        let start_noise = noise.randn(&shape, device)?;
        let latents = match &original {
            Some(original) if !(inpainting && full_strength) => scheduler.add_noise(original, &start_noise, begin)?,
            _ => (&start_noise * scheduler.init_noise_sigma())?,
        };
        let mut guide = Guide::default();
        if let Some(mask) = &self.mask {
            let masked = match &self.masked {
                Some(MaskedPicture::Sampled(p)) => Some(self.sample(p, noise)?),
                Some(MaskedPicture::Fixed(latents)) => Some(latents.clone()),
                // A regular model: diffusers still draws the masked picture's sample.
                None if self.posterior.is_some() => {
                    noise.randn(&shape, device)?;
                    None
                }
                None => None,
            };
            if model.is_inpainting() {
                let masked =
                    masked.ok_or_else(|| Error::invalid("internal: no masked picture for an inpainting model"))?;
                guide.extra_input = Some(Tensor::cat(&[mask, &masked], 1)?);
            } else if let Some(original) = original {
                guide.blend = Some(Blend {
                    original,
                    noise: start_noise,
                    mask: mask.clone(),
                });
            }
        }
        Ok(Begun { latents, begin, guide })
    }

    /// `mean + exp(logvar / 2) · ε`, scaled for the UNet, ε drawn from the image's generator.
    fn sample(&self, posterior: &Posterior, noise: &mut Noise) -> Result<Tensor> {
        let eps = noise.randn(posterior.mean.dims(), posterior.mean.device())?;
        let std = (&posterior.logvar * 0.5)?.exp()?;
        let z = (&posterior.mean + (std * eps)?)?;
        self.encoder.scale_latents(&z)
    }

    fn encoder_latent_shape(&self, model: &LoadedModel) -> Result<Vec<usize>> {
        let dims = match (&self.posterior, &self.masked) {
            (Some(p), _) => p.mean.dims().to_vec(),
            (None, Some(MaskedPicture::Fixed(t))) => t.dims().to_vec(),
            _ => return Err(Error::invalid("internal: an img2img start without a picture")),
        };
        if dims.get(1) != Some(&model.latent_channels()) {
            return Err(Error::invalid("internal: the VAE's latents do not fit the UNet"));
        }
        Ok(dims)
    }

    /// After decoding: the original pasted back outside the (blurred) mask, when asked.
    pub fn finish(&self, recipe: &Recipe, decoded: RgbImage) -> Result<RgbImage> {
        match &self.prepared {
            Some(Prepared {
                image,
                soft_mask: Some(soft),
            }) if recipe.keep_unmasked => paste_back(image, &decoded, soft),
            _ => Ok(decoded),
        }
    }
}
