//! `lantern generate`: headless txt2img with a progress bar, Ctrl+C to stop cleanly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use clap::Args;

use super::progress::ProgressBar;
use crate::device::{self, DeviceChoice, Precision};
use crate::error::Error;
use crate::format::printable;
use crate::model::single_file::Prediction;
use crate::model::{LoadOptions, LoadStage, LoadedModel};
use crate::output::atomic::MAX_FILE_NAME_BYTES;
use crate::pipeline::noise::random_seed;
use crate::pipeline::{self, Event, Request};
use crate::recipe::{HiresFix, HiresUpscaler, NoiseKind, PromptSyntax, Recipe, ResizeMode};
use crate::save::{HistoryLocation, Saver};
use crate::schedulers::SamplerKind;
use crate::source::SourceImages;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// A diffusers model folder (holding model_index.json) or a single-file checkpoint
    /// (`.safetensors` in the original SD layout, as A1111 and civitai use).
    #[arg(long, value_name = "DIR|FILE")]
    pub model: PathBuf,
    /// A separate VAE to decode with (`*.vae.safetensors`, the original layout), instead of
    /// the model's own.
    #[arg(long, value_name = "FILE")]
    pub vae: Option<PathBuf>,
    /// Also look for the LoRA files the prompt's `<lora:NAME:WEIGHT>` tags name in this folder
    /// (besides the data folder's loras/, weights/loras/ and the Lora folder beside the model's).
    /// Repeatable.
    #[arg(long = "lora-dir", value_name = "DIR")]
    pub lora_dirs: Vec<PathBuf>,
    /// Also look for textual-inversion embeddings (used by writing their name in a prompt) in
    /// this folder (besides the data folder's embeddings/, weights/embeddings/ and the
    /// embeddings folders of an A1111 or ComfyUI install the model lives in). Repeatable.
    #[arg(long = "embedding-dir", value_name = "DIR")]
    pub embedding_dirs: Vec<PathBuf>,
    /// What the model predicts: `epsilon` or `v` (SD 2.x 768 models). Default: what the
    /// model's files say (for a single file: its metadata and family; see `models list`).
    #[arg(long, value_name = "epsilon|v", value_parser = parse_prediction)]
    pub prediction: Option<Prediction>,
    /// The tiny autoencoder --draft-decode uses: a diffusers folder (madebyollin/taesd's or
    /// taesdxl's) or a `taesd_decoder.safetensors`. Default: the one installed for the model's
    /// family.
    #[arg(long, value_name = "DIR|FILE")]
    pub taesd: Option<PathBuf>,
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Start from this picture (img2img): PNG, JPEG, WebP, GIF or BMP. Without --width and
    /// --height the picture's own size is used (scaled down to the model's native area when
    /// larger), rounded down to multiples of 8.
    #[arg(long, value_name = "FILE")]
    pub init_image: Option<PathBuf>,
    /// Inpaint: repaint where this picture is white (black = keep, greys in between; a
    /// transparent pixel keeps). Any size: it is resized with the init image.
    #[arg(long, value_name = "FILE")]
    pub mask: Option<PathBuf>,
    /// Outpaint: extend the init image's canvas, e.g. `right=128,bottom=64` (or `all=64`);
    /// the new bands (and a thin seam of the original) are painted, the rest kept.
    #[arg(long, value_name = "SIDE=PX,…", value_parser = parse_sides)]
    pub outpaint: Option<crate::source::outpaint::Sides>,
    /// A safetensors file with one f32 tensor `latents` [1, C, H/8, W/8] to use instead of
    /// seeded noise (what diffusers' pipeline takes as `latents=`).
    #[arg(long, value_name = "FILE")]
    pub init_latents: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub dtype: Precision,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// Where to write the PNG (batches add -1, -2, … before the extension); default: a name
    /// made of the time, seed and prompt in the current folder.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Do not record the images in the history.
    #[arg(long)]
    pub no_history: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_sides(s: &str) -> std::result::Result<crate::source::outpaint::Sides, String> {
    crate::source::outpaint::Sides::parse(s)
}

fn parse_prediction(s: &str) -> std::result::Result<Prediction, String> {
    Prediction::parse(s).ok_or_else(|| format!("`{s}` is not a prediction type (epsilon or v)"))
}

/// The recipe's flags; defaults are the recipe's own ([`Recipe::default`]).
#[derive(Args, Debug)]
pub struct RecipeArgs {
    /// What to draw.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub prompt: String,
    /// What to steer away from.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub negative_prompt: Option<String>,
    #[arg(long, default_value_t = Recipe::default().steps, value_name = "N")]
    pub steps: u32,
    /// Classifier-free guidance scale; 1 or less skips the unconditional pass.
    #[arg(long, default_value_t = Recipe::default().guidance, value_name = "F", allow_hyphen_values = true)]
    pub guidance: f64,
    /// Image width in pixels (a multiple of 8); default: the model's native size.
    #[arg(long, value_name = "W")]
    pub width: Option<u32>,
    /// Image height in pixels (a multiple of 8); default: the model's native size.
    #[arg(long, value_name = "H")]
    pub height: Option<u32>,
    /// Seed for the noise, 0 to 2^64-1; random (and printed) when absent or -1.
    #[arg(long, value_name = "S", allow_hyphen_values = true, value_parser = parse_seed)]
    pub seed: Option<Seed>,
    /// Where the noise comes from: `gpu` = torch's CUDA generator as A1111 draws it (its
    /// default, on any device here), `cpu` = torch's CPU generator (diffusers, ComfyUI),
    /// `lantern` = Lantern's own first generator (pictures made before this choice).
    #[arg(long, default_value_t = Recipe::default().rng, value_name = "SOURCE")]
    pub rng: NoiseKind,
    #[arg(long, default_value = "default", value_name = "NAME", help = scheduler_help())]
    pub scheduler: SamplerKind,
    /// How many images, with seeds S, S+1, …
    #[arg(long, default_value_t = Recipe::default().batch_size, value_name = "N")]
    pub batch: u32,
    /// Condition on the text encoder's hidden state N layers from the end (A1111's "Clip
    /// skip"; 1 = the model's usual layer).
    #[arg(long, default_value_t = Recipe::default().clip_skip, value_name = "N")]
    pub clip_skip: u32,
    /// How prompts are read: `a1111` (weights like `(word:1.2)`, `BREAK`, any length) or
    /// `plain` (diffusers: the text as written, cut at 75 tokens).
    #[arg(long, default_value_t = Recipe::default().prompt_syntax, value_name = "a1111|plain")]
    pub prompt_syntax: PromptSyntax,
    /// img2img: how much of the init image is redrawn (A1111's "Denoising strength"), above 0
    /// and at most 1; the last ⌊steps × strength⌋ steps run.
    #[arg(long, default_value_t = Recipe::default().strength, value_name = "S")]
    pub strength: f64,
    /// img2img: how an init image of another shape is brought to the size: `stretch`
    /// (A1111's "Just resize"), `crop` (cover, cut the overhang) or `fill` (fit, extend the
    /// edges).
    #[arg(long, default_value_t = Recipe::default().resize_mode, value_name = "stretch|crop|fill")]
    pub resize_mode: ResizeMode,
    /// Inpainting: soften the mask's edge by this many pixels (A1111's "Mask blur").
    #[arg(long, default_value_t = Recipe::default().mask_blur, value_name = "PX")]
    pub mask_blur: u32,
    /// Inpainting: paste the original back outside the mask so those pixels stay exactly as
    /// they were (A1111's way); `false` keeps the decoded picture everywhere (diffusers' way).
    #[arg(long, default_value_t = Recipe::default().keep_unmasked, action = clap::ArgAction::Set, value_name = "true|false")]
    pub keep_unmasked: bool,
    /// Hires fix (A1111's): generate at the size, scale the picture up by F (above 1, at most
    /// 4), then redraw it there with an img2img pass of --strength.
    #[arg(long, value_name = "F")]
    pub hires_scale: Option<f64>,
    /// Hires fix: the steps the second pass runs (default: as many as --steps).
    #[arg(long, value_name = "N")]
    pub hires_steps: Option<u32>,
    /// Hires fix: `latent` (A1111's "Latent", bilinear), `latent-nearest`, or `lanczos` (the
    /// decoded picture scaled, then encoded again).
    #[arg(long, value_name = "NAME")]
    pub hires_upscaler: Option<HiresUpscaler>,
    /// Decode the picture with the tiny autoencoder (TAESD) instead of the VAE: much faster,
    /// softer detail. Needs madebyollin/taesd (SD 1.x/2.x) or madebyollin/taesdxl (SDXL)
    /// installed (`lantern models download taesd`), or --taesd.
    #[arg(long)]
    pub draft_decode: bool,
}

/// A `--seed` value: a number, or none for A1111's `-1` ("random").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seed(pub Option<u64>);

/// `--seed`: 0 to 2^64-1, or -1 for a random seed (A1111's convention); anything else is one
/// plain sentence.
fn parse_seed(s: &str) -> std::result::Result<Seed, String> {
    let t = s.trim();
    if t == "-1" {
        return Ok(Seed(None));
    }
    if let Ok(v) = t.parse::<u64>() {
        return Ok(Seed(Some(v)));
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "a seed is a whole number from 0 to {} (or -1 for a random one)",
            u64::MAX
        ));
    }
    Err("a seed is a whole number (or -1 for a random one)".into())
}

/// The `--scheduler` help, listed from the sampler table so it never misses one.
fn scheduler_help() -> String {
    let names: Vec<&str> = SamplerKind::ALL.iter().map(|k| k.cli_name()).collect();
    format!("Sampler: {} (`default` is the model's own scheduler)", names.join(", "))
}

impl RecipeArgs {
    /// The recipe these flags describe, for a model whose native size is `native` (used where
    /// no size was given). An absent seed is drawn here, so the run and its PNG agree.
    pub fn recipe(&self, native: (u32, u32), seed: u64) -> Recipe {
        Recipe {
            prompt: self.prompt.clone(),
            negative_prompt: self.negative_prompt.clone().unwrap_or_default(),
            steps: self.steps,
            guidance: self.guidance,
            width: self.width.unwrap_or(native.0),
            height: self.height.unwrap_or(native.1),
            seed: self.seed.and_then(|s| s.0).unwrap_or(seed),
            sampler: self.scheduler,
            rng: self.rng,
            batch_size: self.batch,
            clip_skip: self.clip_skip,
            prompt_syntax: self.prompt_syntax,
            strength: self.strength,
            resize_mode: self.resize_mode,
            mask_blur: self.mask_blur,
            keep_unmasked: self.keep_unmasked,
            draft_decode: self.draft_decode,
            hires: self.hires_scale.map(|scale| HiresFix {
                scale,
                steps: self.hires_steps.unwrap_or(0),
                upscaler: self.hires_upscaler.unwrap_or_default(),
            }),
            ..Recipe::default()
        }
    }
}

/// What a checkpoint without its own VAE or text encoder borrows (see [`borrowed_parts`]).
#[derive(Default)]
struct Borrowed {
    vae: Option<PathBuf>,
    text_encoders: Option<PathBuf>,
}

/// For a checkpoint without its VAE (and no `--vae`: `wants_vae`) or its text encoder: those of
/// an installed diffusers model of the same family, said on stderr. Nothing when the file has
/// them or nothing can lend them (the load then says what to do).
fn borrowed_parts(model: &Path, wants_vae: bool, bar: &mut ProgressBar) -> Borrowed {
    use crate::hub::{DiscoveryRoots, ModelSource, describe_file, discover, family_donor};
    let Some(described) = describe_file(model, ModelSource::UserFolder) else {
        return Borrowed::default();
    };
    let (vae, text) = (described.needs_vae && wants_vae, described.needs_text_encoder);
    if !vae && !text {
        return Borrowed::default();
    }
    let models = discover(&DiscoveryRoots::standard(Vec::new()));
    let Some(donor) = family_donor(&models, described.base) else {
        return Borrowed::default();
    };
    let parts = match (vae, text) {
        (true, true) => "VAE or text encoder: using those",
        (true, false) => "VAE: decoding with the VAE",
        _ => "text encoder: using the text encoder",
    };
    bar.clear();
    eprintln!(
        "note: {} has no {parts} of {} (same family){}",
        printable(&described.name),
        printable(&donor.name),
        if vae { "; --vae FILE chooses another VAE" } else { "" }
    );
    Borrowed {
        vae: vae.then(|| donor.path.join("vae")),
        text_encoders: text.then(|| donor.path.clone()),
    }
}

/// The TAESD a `--draft-decode` run decodes with: `--taesd`, else the one installed for the
/// model's family (the command line shows no previews, so without --draft-decode none is
/// loaded). `None` when none is found: the run then says how to get one.
fn chosen_taesd(args: &GenerateArgs) -> Option<PathBuf> {
    if !args.recipe.draft_decode {
        return None;
    }
    if let Some(path) = &args.taesd {
        return Some(path.clone());
    }
    use crate::hub::{DiscoveryRoots, ModelSource, describe_file, discover_taesds, discovery, taesd_for};
    let model = &args.model;
    let described = if model.is_file() {
        describe_file(model, ModelSource::UserFolder)
    } else {
        discovery::describe(model, crate::model::display_name(model), ModelSource::UserFolder, None)
    }?;
    let found = discover_taesds(&DiscoveryRoots::standard(vec![model.clone()]));
    let taesd = taesd_for(&found, described.base)?;
    tracing::info!(taesd = %taesd.path.display(), "draft decode with the installed TAESD");
    Some(taesd.path.clone())
}

/// The LoRA files the prompt may name: only looked for when it has a tag.
fn lora_files(args: &GenerateArgs) -> Vec<PathBuf> {
    if crate::text::extra_networks::text_without_tags(&args.recipe.prompt) == args.recipe.prompt {
        return Vec::new();
    }
    let roots = crate::hub::DiscoveryRoots::standard(vec![args.model.clone()]);
    crate::hub::discover_loras(&roots, &args.lora_dirs)
}

pub fn run(args: GenerateArgs) -> Result<()> {
    // Everything that does not need the model is checked before loading it (a sizeless
    // request is checked at the default size, then again at the model's own).
    let seed = random_seed();
    let hires = &args.recipe;
    if hires.hires_scale.is_none() && (hires.hires_steps.is_some() || hires.hires_upscaler.is_some()) {
        bail!("--hires-steps and --hires-upscaler need --hires-scale (how much larger the picture gets)");
    }
    let source = read_source(&args)?;
    let default_size = (Recipe::default().width, Recipe::default().height);
    start_recipe(args.recipe.recipe(default_size, seed), source.as_ref()).validate()?;
    let init_latents = args.init_latents.as_deref().map(read_init_latents).transpose()?;
    if let Some(out) = &args.output {
        check_output_path(out, args.recipe.batch)?;
    }
    let device = device::open(args.device)?;
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        // A second Ctrl+C exits at once.
        let _ = ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }

    let mut bar = ProgressBar::new(args.quiet);
    bar.message("loading model…");
    let borrowed = borrowed_parts(&args.model, args.vae.is_none(), &mut bar);
    let options = LoadOptions {
        dtype: args.dtype.dtype(),
        device,
        vae: args.vae.clone().or(borrowed.vae),
        prediction: args.prediction,
        text_encoders: borrowed.text_encoders,
        taesd: chosen_taesd(&args),
    };
    let model = LoadedModel::load(&args.model, options, &mut |stage| {
        bar.message(match stage {
            LoadStage::TextEncoder(_) => "loading text encoder…",
            LoadStage::Unet => "loading UNet…",
            LoadStage::Vae => "loading VAE…",
        })
    })?;
    let size = match &source {
        Some(s) => crate::source::prepare::default_size(s.image.width, s.image.height, model.native_size()),
        None => model.native_size(),
    };
    let recipe = start_recipe(args.recipe.recipe(size, seed), source.as_ref());
    recipe.validate()?;
    let request = Request {
        init_latents,
        source,
        lora_files: lora_files(&args),
        embedding_files: crate::hub::discover_embeddings(
            &crate::hub::DiscoveryRoots::standard(vec![args.model.clone()]),
            &args.embedding_dirs,
        ),
        ..Request::new(recipe)
    };
    let history = (!args.no_history).then(|| {
        let data = crate::paths::DataDir::from_env();
        HistoryLocation::in_data_dir(&data, data.outputs())
    });
    let mut saver = Saver::new(PathBuf::from("."), history);

    let mut saved: Vec<PathBuf> = Vec::new();
    let mut save_error: Option<anyhow::Error> = None;
    let result = pipeline::generate(&model, &request, &cancel, &mut |event| match event {
        Event::ApplyingLoras => bar.message("applying LoRAs…"),
        Event::LoraPartlyApplied { name, skipped, total } => {
            bar.clear();
            eprintln!(
                "warning: LoRA `{}`: {skipped} of its {total} layers match nothing in this model and were skipped",
                printable(&name)
            );
        }
        Event::EncodingPrompt => bar.message("encoding prompt…"),
        Event::PromptTruncated { used, total } => {
            bar.clear();
            eprintln!("warning: the prompt has {total} tokens; only the first {used} are used");
        }
        Event::Step {
            image,
            batch,
            step,
            total,
            elapsed,
            eta,
        } => {
            let label = if batch > 1 {
                format!("image {}/{batch}", image + 1)
            } else {
                "sampling".into()
            };
            bar.step(&label, step, total, elapsed, eta);
        }
        Event::Decoding { .. } => bar.message("decoding…"),
        Event::Preview { .. } => {}
        Event::ImageReady(generated) => {
            if save_error.is_some() {
                return;
            }
            let path = args.output.as_ref().map(|p| numbered(p, generated.params.batch_index));
            match saver.save(&generated, path.as_deref()) {
                Ok(kept) => {
                    bar.clear();
                    println!(
                        "{}  (seed {})",
                        printable(&kept.path.display().to_string()),
                        generated.params.seed
                    );
                    if let Some(notice) = kept.notice {
                        eprintln!("warning: {}", printable(&notice));
                    }
                    if let Some(Err(e)) = kept.recorded {
                        eprintln!(
                            "warning: could not record in the history: {}",
                            printable(&e.to_string())
                        );
                    }
                    saved.push(kept.path);
                }
                Err(e) => {
                    save_error = Some(e.into());
                    cancel.store(true, Ordering::SeqCst);
                }
            }
        }
    });
    bar.clear();
    if let Some(e) = save_error {
        return Err(e);
    }
    match result {
        Ok(_) => Ok(()),
        Err(Error::Cancelled) => {
            let kept = if saved.is_empty() {
                "nothing was written".to_string()
            } else {
                format!("kept {} finished image(s)", saved.len())
            };
            bail!("cancelled; {kept}")
        }
        Err(e) => Err(e.into()),
    }
}

/// `--init-image` and `--mask`, read (and refused if unreadable) before the model loads.
fn read_source(args: &GenerateArgs) -> Result<Option<SourceImages>> {
    let Some(path) = &args.init_image else {
        if args.mask.is_some() || args.outpaint.is_some() {
            bail!("--mask and --outpaint need --init-image: the picture to paint on");
        }
        return Ok(None);
    };
    if args.init_latents.is_some() {
        bail!("--init-latents and --init-image cannot be given together");
    }
    let image = crate::source::read_init_image(path)?;
    let mask = args.mask.as_deref().map(crate::source::read_mask).transpose()?;
    let source = SourceImages { image, mask };
    match args.outpaint {
        Some(sides) => Ok(Some(crate::source::outpaint::extend(&source, sides)?)),
        None => Ok(Some(source)),
    }
}

/// The recipe naming its start pictures (by the hashes the pipeline will give them), so the
/// img2img settings are checked before the model loads.
fn start_recipe(mut recipe: Recipe, source: Option<&SourceImages>) -> Recipe {
    use crate::source::store::content_hash;
    if let Some(source) = source {
        recipe.init_image = Some(content_hash(&source.image));
        recipe.mask = source.mask.as_ref().map(|m| content_hash(&m.to_rgb()));
    }
    recipe
}

fn read_init_latents(path: &Path) -> Result<Tensor> {
    if !path.is_file() {
        bail!("{}: init latents file not found", path.display());
    }
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| anyhow::anyhow!("{}: not a readable safetensors file ({e})", path.display()))?;
    let latents = tensors
        .get("latents")
        .with_context(|| format!("{}: no tensor named `latents`", path.display()))?;
    if latents.rank() != 4 || latents.dim(0)? != 1 {
        bail!(
            "{}: `latents` must have shape [1, C, H/8, W/8], got {:?}",
            path.display(),
            latents.dims()
        );
    }
    let latents = latents.to_dtype(DType::F32)?;
    // NaN or infinite noise runs to the end and gives a black or garbage picture: say so now.
    let finite = latents.flatten_all()?.to_vec1::<f32>()?.iter().all(|v| v.is_finite());
    if !finite {
        bail!("{}: `latents` holds NaN or infinite values", path.display());
    }
    Ok(latents)
}

/// An explicit output path must be in an existing folder, not be a folder, and have a file
/// name the file system accepts (checked for the last image of a batch too, whose name gets
/// `-N`), all before the model loads rather than after the whole generation.
fn check_output_path(path: &Path, batch: u32) -> Result<()> {
    for index in [0, batch.saturating_sub(1)] {
        let numbered = numbered(path, index);
        let len = numbered.file_name().map_or(0, |n| n.as_encoded_bytes().len());
        if len > MAX_FILE_NAME_BYTES {
            bail!(
                "{}: the file name is {len} bytes long; file systems accept at most {MAX_FILE_NAME_BYTES}",
                numbered.display()
            );
        }
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!(
            "{}: the output folder {} does not exist",
            path.display(),
            parent.display()
        );
    }
    if path.is_dir() {
        bail!("{}: is a folder; give a file name ending in .png", path.display());
    }
    Ok(())
}

/// `out.png` → `out.png`, `out-1.png`, `out-2.png` for the images of a batch.
fn numbered(path: &Path, index: u32) -> PathBuf {
    if index == 0 {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!("{stem}-{index}{ext}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_u64_or_minus_one() {
        assert_eq!(parse_seed("0"), Ok(Seed(Some(0))));
        assert_eq!(parse_seed("18446744073709551615"), Ok(Seed(Some(u64::MAX))));
        assert_eq!(parse_seed("-1"), Ok(Seed(None)));
        for bad in [
            "18446744073709551616",
            "-2",
            "-18446744073709551617",
            "99999999999999999999999",
        ] {
            let e = parse_seed(bad).unwrap_err();
            assert!(e.contains("0 to 18446744073709551615"), "{bad}: {e}");
        }
        assert!(parse_seed("abc").is_err());
        assert!(parse_seed("").is_err());
    }
}
