//! txt2img: prompt → embeddings → the sampler loop over the UNet (with classifier-free
//! guidance) → VAE decode → 8-bit RGB, with per-step progress, previews and cancellation.
//! Matches diffusers' `StableDiffusionPipeline` / `StableDiffusionXLPipeline` for the same
//! initial latents, and for the same seed with `--rng cpu` (diffusers'
//! `generator=torch.Generator("cpu").manual_seed(seed)`); see [`noise`].

pub mod embeddings;
pub mod hires;
mod img2img;
pub mod loras;
pub mod noise;
pub mod preview;
pub mod prompt;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use candle_core::{DType, Tensor};

use self::img2img::{Begun, Guide, Start, begin_from_latents, begin_index};
use self::noise::Noise;
use self::prompt::{PromptEmbeddings, encode_prompts};
use crate::error::{Error, Result};
use crate::model::embedding::TextualInversion;
use crate::model::unet::TextTimeConditioning;
use crate::model::{LoadedModel, PipelineKind};
use crate::output::RgbImage;
use crate::recipe::{HiresUpscaler, PromptSyntax, Recipe};
use crate::schedulers;
use crate::source::SourceImages;
use crate::source::store::content_hash;
use crate::text::prompt::CHUNK_IDS;

/// What to make: a recipe, and how to run it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The first image's recipe. Its seed is used as given (callers draw a random one);
    /// its `model` and `model_hash` are filled in from the loaded model.
    pub recipe: Recipe,
    /// Replaces the seeded initial noise: [1, C, H/8, W/8] f32, diffusers' `latents=`
    /// argument (ancestral samplers still draw their per-step noise from the seed).
    pub init_latents: Option<Tensor>,
    /// img2img and inpainting: the picture (and mask) to start from, as given. The recipe's
    /// `init_image` and `mask` are set from them (their content hashes); a recipe that names a
    /// start picture needs it here.
    pub source: Option<SourceImages>,
    /// Emit a cheap preview image every step.
    pub previews: bool,
    /// The LoRA files the prompt's `<lora:NAME:…>` tags may name (by file stem); see
    /// [`loras::choose`]. The model's LoRA set is made to match the prompt's tags.
    pub lora_files: Vec<std::path::PathBuf>,
    /// The textual-inversion embedding files the prompts may name (by file stem); see
    /// [`embeddings::choose`].
    pub embedding_files: Vec<std::path::PathBuf>,
}

impl Request {
    pub fn new(recipe: Recipe) -> Request {
        Request {
            recipe,
            ..Request::default()
        }
    }
}

/// One finished picture.
#[derive(Clone, Debug)]
pub struct Generated {
    pub image: RgbImage,
    /// This image's own recipe (its seed, its place in the batch, the model's name and hash).
    pub params: Recipe,
    /// Sampling and decoding time of this image.
    pub duration: Duration,
    /// The pictures it started from (img2img, inpainting), kept with its history row.
    pub source: Option<std::sync::Arc<SourceImages>>,
}

/// Progress reports, in order.
#[derive(Clone, Debug)]
pub enum Event {
    /// The prompt's LoRAs are being merged into the weights (only when the set changes).
    ApplyingLoras,
    /// Some of a LoRA's layers name no weight of this model and were skipped (as A1111 does);
    /// the rest are applied.
    LoraPartlyApplied {
        name: String,
        skipped: usize,
        total: usize,
    },
    EncodingPrompt,
    /// After each UNet evaluation. `step` counts from 1 to `total`.
    Step {
        image: u32,
        batch: u32,
        step: usize,
        total: usize,
        elapsed: Duration,
        eta: Duration,
    },
    Preview {
        image: u32,
        preview: RgbImage,
        /// Picture pixels per preview pixel: 1 for a TAESD preview, the VAE's 8 for the
        /// linear approximation.
        scale: u32,
    },
    Decoding {
        image: u32,
    },
    /// Plain syntax only: the prompt was longer than the text encoder's window; the rest was
    /// ignored. (A1111 syntax encodes every token, in chunks.)
    PromptTruncated {
        used: usize,
        total: usize,
    },
    ImageReady(Box<Generated>),
}

/// Runs a request to the end, calling `on_event` as it goes; each image arrives in an
/// [`Event::ImageReady`] as soon as it is decoded, so a cancelled batch keeps the images
/// already made. Returns the seeds used.
pub fn generate(
    model: &LoadedModel,
    req: &Request,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(Event),
) -> Result<Vec<u64>> {
    let recipe = &with_source_hashes(&req.recipe, req.source.as_ref())?;
    recipe.validate()?;
    if recipe.draft_decode {
        // Refused before any sampling, not after it.
        model.taesd.require(model.taesd_repo())?;
    }
    if model.folder.requires_aesthetics_score && req.source.is_none() {
        return Err(Error::invalid(
            "this is an SDXL refiner: it refines a picture rather than making one from text; give it a start picture (and a strength of about 0.3)",
        ));
    }
    if req.source.is_some() && req.init_latents.is_some() {
        return Err(Error::invalid(
            "init latents and an init image cannot be given together",
        ));
    }
    let scale = model.vae_scale_factor() as u32;
    if !recipe.width.is_multiple_of(scale) || !recipe.height.is_multiple_of(scale) {
        return Err(Error::invalid(format!(
            "width and height must be multiples of {scale} for this model"
        )));
    }
    let latent_shape = [
        1,
        model.latent_channels(),
        (recipe.height / scale) as usize,
        (recipe.width / scale) as usize,
    ];
    if let Some(lat) = &req.init_latents
        && lat.dims() != latent_shape
    {
        return Err(Error::invalid(format!(
            "init latents have shape {:?} but a {}x{} image needs {:?}",
            lat.dims(),
            recipe.width,
            recipe.height,
            latent_shape
        )));
    }

    let stripped = crate::text::extra_networks::strip(&recipe.prompt)?;
    let choices = loras::choose(&stripped.loras, &req.lora_files)?;
    if !choices.is_empty() || !model.lora.applied().is_empty() {
        on_event(Event::ApplyingLoras);
    }
    let applied = model.lora.apply(&choices)?;
    for a in applied.iter().filter(|a| a.unmatched > 0) {
        on_event(Event::LoraPartlyApplied {
            name: a.name.clone(),
            skipped: a.unmatched,
            total: a.unmatched + a.layers,
        });
    }
    let lora_hashes: Vec<(String, String)> = applied.iter().map(|a| (a.name.clone(), a.hash.clone())).collect();

    on_event(Event::EncodingPrompt);
    // The encoders see the prompt without its tags; the picture's recipe keeps them.
    let text_recipe = Recipe {
        prompt: stripped.text,
        ..recipe.clone()
    };
    let inversions = embeddings::choose(
        model,
        &[&text_recipe.prompt, &text_recipe.negative_prompt],
        &req.embedding_files,
    )?;
    let conditioning = Conditioning::new(model, &text_recipe, &inversions, on_event)?;
    // Hires fix: the second pass's recipe, and its conditioning (SDXL's size ids are the
    // larger size's).
    let hires = match &recipe.hires {
        Some(fix) => {
            let second = hires::second_pass_recipe(recipe, fix)?;
            let text = Recipe {
                prompt: text_recipe.prompt.clone(),
                ..second.clone()
            };
            let cond = Conditioning::new(model, &text, &inversions, &mut |_| {})?;
            Some((*fix, second, cond))
        }
        None => None,
    };
    let ti_hashes = inversions
        .iter()
        .map(|inv| {
            let hash = crate::model::single_file::hash::sha256_cached(&inv.path)?;
            Ok((inv.name.clone(), hash[..12].to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    // img2img, inpainting, and any use of an inpainting model: the start picture encoded once.
    let start = if req.source.is_some() || model.is_inpainting() {
        Some(Start::new(model, recipe, req.source.as_ref())?)
    } else {
        None
    };
    let source = req.source.clone().map(std::sync::Arc::new);
    let mut seeds = Vec::new();
    for i in 0..recipe.batch_size {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let mut image_recipe = recipe.for_batch_image(i);
        let started = Instant::now();
        // Image i's own generator from its own seed (seed + i), as A1111 draws a batch.
        let mut noise = Noise::new(recipe.rng, image_recipe.seed);
        let device = &model.options.device;
        let mut scheduler = build_scheduler(model, recipe, recipe.steps)?;
        let begun = match &start {
            Some(start) => start.begin_image(model, scheduler.as_mut(), recipe.steps as usize, &mut noise)?,
            None => {
                let init = match &req.init_latents {
                    Some(l) => l.to_device(device)?.to_dtype(DType::F32)?,
                    None => noise.randn(&latent_shape, device)?,
                };
                Begun {
                    latents: (init * scheduler.init_noise_sigma())?,
                    begin: 0,
                    guide: Guide::default(),
                }
            }
        };
        let first_len = scheduler.timesteps().len() - begun.begin;
        let mut second_pass = match &hires {
            Some((fix, second, cond)) => {
                let s2 = build_scheduler(model, recipe, second.steps)?;
                let begin = begin_index(second.steps as usize, second.strength, s2.order());
                let len = s2.timesteps().len() - begin;
                Some((fix, second, cond, s2, len))
            }
            None => None,
        };
        let total = first_len + second_pass.as_ref().map_or(0, |p| p.4);
        let mut latents = denoise(
            model,
            req,
            &conditioning,
            scheduler.as_mut(),
            begun,
            &mut noise,
            cancel,
            (i, 0, total),
            on_event,
        )?;
        if let Some((fix, second, cond, s2, _)) = &mut second_pass {
            // A1111 draws the second pass's noise from the image's seed again.
            let mut noise = Noise::new(recipe.rng, image_recipe.seed);
            let (w, h) = (second.width as usize, second.height as usize);
            let f = model.vae_scale_factor();
            let begun = match fix.upscaler {
                HiresUpscaler::Latent | HiresUpscaler::LatentNearest => {
                    let up = hires::upscale_latents(&latents, h / f, w / f, fix.upscaler)?;
                    begin_from_latents(s2.as_mut(), second.steps as usize, second.strength, up, &mut noise)?
                }
                HiresUpscaler::Lanczos => {
                    release_buffers();
                    let picture = decode(model, &latents)?;
                    let source = SourceImages {
                        image: picture,
                        mask: None,
                    };
                    let start = Start::new(model, second, Some(&source))?;
                    start.begin_image(model, s2.as_mut(), second.steps as usize, &mut noise)?
                }
            };
            latents = denoise(
                model,
                req,
                cond,
                s2.as_mut(),
                begun,
                &mut noise,
                cancel,
                (i, first_len, total),
                on_event,
            )?;
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        on_event(Event::Decoding { image: i });
        // The UNet's buffers are not the VAE's: give them back before decoding.
        release_buffers();
        let mut image = if recipe.draft_decode {
            draft_decode(model, &latents)?
        } else {
            decode(model, &latents)?
        };
        release_buffers();
        if let Some(start) = &start {
            image = start.finish(recipe, image)?;
        }
        // The picture's recipe says what was done: the sampler that ran, the model used, and
        // none of the uninterpreted fields a restored recipe may still carry.
        image_recipe.sampler = scheduler.kind();
        image_recipe.extra.clear();
        image_recipe.model = model.name();
        image_recipe.model_hash = Some(model.hash.clone());
        image_recipe.vae = model.vae_name();
        image_recipe.vae_hash = model.vae_hash.clone();
        image_recipe.lora_hashes = lora_hashes.clone();
        image_recipe.ti_hashes = ti_hashes.clone();
        seeds.push(image_recipe.seed);
        on_event(Event::ImageReady(Box::new(Generated {
            image,
            params: image_recipe,
            duration: started.elapsed(),
            source: source.clone(),
        })));
    }
    Ok(seeds)
}

/// The recipe's sampler set up for `steps` steps on this model's scheduler config.
fn build_scheduler(model: &LoadedModel, recipe: &Recipe, steps: u32) -> Result<Box<dyn schedulers::Scheduler>> {
    schedulers::build(
        recipe.sampler,
        &model.scheduler_config,
        &model.folder.scheduler_config_path(),
        steps as usize,
    )
}

/// The request's recipe with its start pictures named by their content hashes (the hashes
/// they are kept under), or an error when the recipe names a picture the request lacks.
fn with_source_hashes(recipe: &Recipe, source: Option<&SourceImages>) -> Result<Recipe> {
    let mut recipe = recipe.clone();
    match source {
        Some(source) => {
            recipe.init_image = Some(content_hash(&source.image));
            recipe.mask = source.mask.as_ref().map(|m| content_hash(&m.to_rgb()));
        }
        None if recipe.init_image.is_some() => {
            return Err(Error::invalid(
                "this recipe starts from a picture, but the picture was not given",
            ));
        }
        None => {}
    }
    Ok(recipe)
}

/// What one UNet call is conditioned on.
struct CondInputs {
    /// [rows, tokens, dim]
    context: Tensor,
    /// SDXL only: pooled embeddings and size ids, one row per context row.
    text_embeds: Option<Tensor>,
    time_ids: Option<Tensor>,
}

/// The text conditioning of a request, shared by every image of its batch.
struct Conditioning {
    /// One call with rows [unconditional, conditional] (or the conditional alone without
    /// guidance); or, when the two have different lengths (A1111 prompts with different chunk
    /// counts), two calls: unconditional, then conditional — A1111's default, no padding.
    calls: Vec<CondInputs>,
}

impl Conditioning {
    fn new(
        model: &LoadedModel,
        req: &Recipe,
        inversions: &[TextualInversion],
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Conditioning> {
        prompt::check_clip_skip(model, req.clip_skip)?;
        let plain = req.prompt_syntax == PromptSyntax::Plain;
        if plain && let Some(enc) = model.text_encoders.first() {
            let used = enc.tokenizer.count_tokens(&req.prompt);
            if used > 75 {
                on_event(Event::PromptTruncated { used: 75, total: used });
            }
        }
        let zeros_for_negative = !req.has_negative_prompt()
            && model.kind() == PipelineKind::StableDiffusionXl
            && model.folder.force_zeros_for_empty_prompt;
        let (positive, negative) =
            if plain && req.clip_skip == 1 && req.uses_guidance() && !zeros_for_negative && inversions.is_empty() {
                // diffusers: the prompt and the negative prompt in one batch.
                let mut both = encode_prompts(model, &[&req.negative_prompt, &req.prompt])?;
                let positive = both.pop().expect("two");
                (positive, Some(both.pop().expect("two")))
            } else {
                let encode =
                    |text: &str| prompt::encode_prompt_with(model, text, req.prompt_syntax, req.clip_skip, inversions);
                let positive = encode(&req.prompt)?;
                let negative = if !req.uses_guidance() {
                    None
                } else if zeros_for_negative {
                    // Zeros shaped like an empty prompt's conditioning (one chunk).
                    let first = PromptEmbeddings {
                        context: positive.context.narrow(1, 0, CHUNK_IDS.min(positive.context.dim(1)?))?,
                        pooled: positive.pooled.clone(),
                    };
                    Some(PromptEmbeddings::zeros_like(&first)?)
                } else {
                    Some(encode(&req.negative_prompt)?)
                };
                (positive, negative)
            };
        let calls = match negative {
            Some(negative) if negative.context.dim(1)? == positive.context.dim(1)? => {
                vec![cond_inputs(
                    model,
                    req,
                    &[(&negative, Row::Negative), (&positive, Row::Positive)],
                )?]
            }
            Some(negative) => vec![
                cond_inputs(model, req, &[(&negative, Row::Negative)])?,
                cond_inputs(model, req, &[(&positive, Row::Positive)])?,
            ],
            None => vec![cond_inputs(model, req, &[(&positive, Row::Positive)])?],
        };
        Ok(Conditioning { calls })
    }
}

/// Which prompt a row of a UNet call holds (the SDXL refiner scores them differently).
#[derive(Clone, Copy, PartialEq)]
enum Row {
    Negative,
    Positive,
}

/// diffusers' default aesthetic scores for the SDXL refiner: the prompt's and the negative's.
const AESTHETIC_SCORE: f32 = 6.0;
const NEGATIVE_AESTHETIC_SCORE: f32 = 2.5;

/// One UNet call's conditioning: the embeddings stacked as rows, and SDXL's size ids.
fn cond_inputs(model: &LoadedModel, req: &Recipe, rows: &[(&PromptEmbeddings, Row)]) -> Result<CondInputs> {
    let kinds: Vec<Row> = rows.iter().map(|(_, k)| *k).collect();
    let rows: Vec<&PromptEmbeddings> = rows.iter().map(|(r, _)| *r).collect();
    let contexts: Vec<&Tensor> = rows.iter().map(|r| &r.context).collect();
    let context = if contexts.len() == 1 {
        contexts[0].clone()
    } else {
        Tensor::cat(&contexts, 0)?
    };
    let (text_embeds, time_ids) = match model.kind() {
        PipelineKind::StableDiffusion => (None, None),
        PipelineKind::StableDiffusionXl => {
            let pooled = rows
                .iter()
                .map(|r| {
                    r.pooled
                        .as_ref()
                        .ok_or_else(|| Error::invalid("the SDXL text encoder gave no pooled embedding"))
                })
                .collect::<Result<Vec<_>>>()?;
            let text_embeds = if pooled.len() == 1 {
                pooled[0].clone()
            } else {
                Tensor::cat(&pooled, 0)?
            };
            let (h, w) = (req.height as f32, req.width as f32);
            let n = text_embeds.dim(0)?;
            let ids: Vec<f32> = if model.folder.requires_aesthetics_score {
                // Original size, crop, and the aesthetic score in place of the target size.
                kinds
                    .iter()
                    .flat_map(|k| {
                        let score = if *k == Row::Negative {
                            NEGATIVE_AESTHETIC_SCORE
                        } else {
                            AESTHETIC_SCORE
                        };
                        [h, w, 0.0, 0.0, score]
                    })
                    .collect()
            } else {
                (0..n).flat_map(|_| [h, w, 0.0, 0.0, h, w]).collect()
            };
            let per_row = ids.len() / n.max(1);
            let time_ids = Tensor::from_vec(ids, (n, per_row), text_embeds.device())?;
            (Some(text_embeds), Some(time_ids))
        }
    };
    Ok(CondInputs {
        context,
        text_embeds,
        time_ids,
    })
}

#[allow(clippy::too_many_arguments)]
fn denoise(
    model: &LoadedModel,
    req: &Request,
    cond: &Conditioning,
    scheduler: &mut dyn schedulers::Scheduler,
    begun: Begun,
    noise: &mut Noise,
    cancel: &AtomicBool,
    // The image's place in the batch, the steps of earlier passes, the steps of all passes.
    (image, before, overall): (u32, usize, usize),
    on_event: &mut dyn FnMut(Event),
) -> Result<Tensor> {
    let Begun {
        mut latents,
        begin,
        guide,
    } = begun;
    let timesteps = scheduler.timesteps().to_vec();
    let total = timesteps.len() - begin;
    let started = Instant::now();
    let guided = req.recipe.uses_guidance();
    let mut pacer = preview::Pacer::default();
    // An inpainting model reads the mask and the masked picture beside the latents.
    let with_extra = |input: Tensor| -> Result<Tensor> {
        match &guide.extra_input {
            None => Ok(input),
            Some(extra) => {
                let rows = input.dim(0)?;
                let extra = if rows == 1 {
                    extra.clone()
                } else {
                    Tensor::cat(&vec![extra; rows], 0)?
                };
                Ok(Tensor::cat(&[&input, &extra], 1)?)
            }
        }
    };
    for (i, &t) in timesteps.iter().enumerate().skip(begin) {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let unet = |call: &CondInputs, input: &Tensor| -> Result<Tensor> {
            let text_time = match (&call.text_embeds, &call.time_ids) {
                (Some(text_embeds), Some(time_ids)) => Some(TextTimeConditioning { text_embeds, time_ids }),
                _ => None,
            };
            Ok(model
                .unet
                .forward(input, t, &call.context, text_time)?
                .to_dtype(DType::F32)?)
        };
        let prediction = match (guided, cond.calls.as_slice()) {
            (true, [both]) => {
                let input = scheduler.scale_model_input(&Tensor::cat(&[&latents, &latents], 0)?, i)?;
                let out = unet(both, &with_extra(input)?)?;
                let uncond = out.get(0)?.unsqueeze(0)?;
                let text = out.get(1)?.unsqueeze(0)?;
                (&uncond + ((text - &uncond)? * req.recipe.guidance)?)?
            }
            (true, [negative, positive]) => {
                let input = with_extra(scheduler.scale_model_input(&latents, i)?)?;
                let uncond = unet(negative, &input)?;
                let text = unet(positive, &input)?;
                (&uncond + ((text - &uncond)? * req.recipe.guidance)?)?
            }
            (false, [positive]) => unet(positive, &with_extra(scheduler.scale_model_input(&latents, i)?)?)?,
            _ => return Err(Error::invalid("internal: conditioning does not match guidance")),
        };
        latents = scheduler.step(&prediction, i, &latents, noise)?;
        if let Some(blend) = &guide.blend {
            latents = blend.apply(scheduler, &latents, i)?;
        }
        let done = i - begin + 1;
        let elapsed = started.elapsed();
        let per_step = elapsed / done as u32;
        let overall = overall.max(before + total);
        on_event(Event::Step {
            image,
            batch: req.recipe.batch_size,
            step: before + done,
            total: overall,
            elapsed,
            eta: per_step * (overall - before - done) as u32,
        });
        if req.previews
            && let Some(preview) = preview::preview(model, &latents, &mut pacer)?
        {
            let scale = (latents.dim(3)? * model.vae_scale_factor()) as u32 / preview.width.max(1);
            on_event(Event::Preview { image, preview, scale });
        }
    }
    Ok(latents)
}

/// Returns cached activation and scratch memory to the system between phases.
fn release_buffers() {
    crate::model::cpu::release_scratch();
    crate::alloc::release_cached();
}

/// VAE decode and diffusers' post-processing: [-1, 1] → [0, 1], clamp, ×255, round.
pub fn decode(model: &LoadedModel, latents: &Tensor) -> Result<RgbImage> {
    let z = model.vae.unscale_latents(latents)?;
    let x = model.vae.decode(&z)?;
    to_rgb8(&x)
}

/// "Draft decode": the tiny autoencoder's picture of the latents, post-processed as the
/// VAE's (diffusers' pipelines with `AutoencoderTiny` as their VAE: `decode(latents / 1.0)`).
pub fn draft_decode(model: &LoadedModel, latents: &Tensor) -> Result<RgbImage> {
    let taesd = model.taesd.require(model.taesd_repo())?;
    to_rgb8(&taesd.decode_latents(latents)?)
}

/// [1, 3, H, W] in [-1, 1] → RGB8. Rounds half to even, like NumPy's `round`.
pub fn to_rgb8(x: &Tensor) -> Result<RgbImage> {
    let (_, c, h, w) = x.dims4()?;
    if c != 3 {
        return Err(Error::invalid(format!("the VAE produced {c} channels, expected 3")));
    }
    let x = ((x.get(0)? / 2.0)? + 0.5)?.clamp(0f32, 1f32)?;
    let hwc: Vec<f32> = x.permute((1, 2, 0))?.flatten_all()?.to_vec1()?;
    let data = hwc.iter().map(|v| (v * 255.0).round_ties_even() as u8).collect();
    Ok(RgbImage {
        width: w as u32,
        height: h as u32,
        data,
    })
}
