//! Reading a model folder in the diffusers layout (what `save_pretrained` writes and what the
//! Hugging Face repos of SD 1.5, 2.1, XL and the Turbos hold) into candle modules. Every size
//! comes from the components' own config files; nothing is keyed on a model's name.

pub mod clip;
pub mod config;
pub mod cpu;
pub mod embedding;
pub mod layers;
pub mod lora;
pub mod resnet;
pub mod single_file;
pub mod taesd;
pub mod unet;
pub mod vae;
pub mod vae_encoder;
pub mod weights;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use serde_json::Value;

use self::clip::{ClipTextConfig, ClipTextModel};
use self::config::ConfigFile;
use self::unet::{DownBlockKind, MidBlockKind, Unet, UnetConfig};
use self::vae::{VaeConfig, VaeDecoder};
use self::weights::{VariantPreference, Weights};
use crate::error::{Error, Result};
use crate::text::ClipTokenizer;

/// The pipeline classes we run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipelineKind {
    /// SD 1.x, 2.x, SD-Turbo: one CLIP text encoder.
    StableDiffusion,
    /// SDXL, SDXL-Turbo: two text encoders, pooled embeddings and size conditioning.
    StableDiffusionXl,
}

/// A model folder whose `model_index.json` we understand, before any weight is read.
#[derive(Clone, Debug)]
pub struct ModelFolder {
    pub root: PathBuf,
    pub kind: PipelineKind,
    /// Component folder names that are present in the index (not null).
    components: Vec<String>,
    /// SDXL: use zero embeddings for the unconditional pass when no negative prompt is given.
    pub force_zeros_for_empty_prompt: bool,
    /// The SDXL refiner: conditioned on an aesthetic score (6 for the prompt, 2.5 for the
    /// negative, diffusers' defaults) in place of the target size, five size numbers in all;
    /// it refines pictures (img2img) and makes none from text.
    pub requires_aesthetics_score: bool,
    /// Set when `root` is a single-file checkpoint rather than a folder.
    pub single_file: Option<Box<single_file::SingleFile>>,
    /// The scheduler class `model_index.json` names: the one diffusers builds (with the
    /// config file's fields), whatever that file's own `_class_name` says.
    pub scheduler_class: Option<String>,
}

impl ModelFolder {
    pub fn open(root: &Path) -> Result<ModelFolder> {
        if single_file::is_pickle(root) {
            return Err(single_file::pickle_error(root));
        }
        if !root.exists() {
            return Err(Error::model(root, "model folder does not exist"));
        }
        if !root.is_dir() {
            if root.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors")) {
                return Self::open_single_file(root);
            }
            return Err(Error::model(
                root,
                "not a folder or a .safetensors checkpoint; point --model at a diffusers model folder or a single .safetensors file",
            ));
        }
        let index_path = root.join("model_index.json");
        if !index_path.is_file() {
            return Err(Error::model(
                root,
                "no model_index.json here; this is not a diffusers model folder (a single-file checkpoint is chosen as the .safetensors file itself)",
            ));
        }
        let index = ConfigFile::read(&index_path)?;
        let class = index.str_or("_class_name", "")?;
        let kind = match class {
            // Inpainting and img2img repos name their pipeline; the networks are the same kind
            // (an inpainting UNet reads 9 channels, see `LoadedModel::is_inpainting`).
            "StableDiffusionPipeline" | "StableDiffusionInpaintPipeline" | "StableDiffusionImg2ImgPipeline" => {
                PipelineKind::StableDiffusion
            }
            // The SDXL refiner's repo names the img2img pipeline (see `requires_aesthetics_score`).
            "StableDiffusionXLPipeline" | "StableDiffusionXLInpaintPipeline" | "StableDiffusionXLImg2ImgPipeline" => {
                PipelineKind::StableDiffusionXl
            }
            other => {
                return Err(index.error(
                    "_class_name",
                    format!(
                        "pipeline `{other}` is not supported ({})",
                        crate::hub::inspect::SUPPORTED_PIPELINES.join(", ")
                    ),
                ));
            }
        };
        let expected: &[(&str, &[&str])] = &[
            ("unet", &["UNet2DConditionModel"]),
            ("vae", &["AutoencoderKL"]),
            ("text_encoder", &["CLIPTextModel", "CLIPTextModelWithProjection"]),
            ("text_encoder_2", &["CLIPTextModelWithProjection"]),
            ("tokenizer", &["CLIPTokenizer", "CLIPTokenizerFast"]),
            ("tokenizer_2", &["CLIPTokenizer", "CLIPTokenizerFast"]),
        ];
        let mut components = Vec::new();
        for (name, classes) in expected {
            match index.raw(name) {
                Some(Value::Array(pair)) if pair.len() == 2 && !pair[1].is_null() => {
                    let cls = pair[1].as_str().unwrap_or_default();
                    if !classes.contains(&cls) {
                        return Err(index.error(
                            name,
                            format!("component class `{cls}` is not supported ({})", classes.join(", ")),
                        ));
                    }
                    components.push(name.to_string());
                }
                _ => {}
            }
        }
        for required in ["unet", "vae"] {
            if !components.iter().any(|c| c == required) {
                return Err(index.error(required, "this component is required but the index lists none"));
            }
        }
        let encoders = match kind {
            PipelineKind::StableDiffusion => vec!["text_encoder"],
            PipelineKind::StableDiffusionXl => vec!["text_encoder_2"],
        };
        for e in encoders {
            if !components.iter().any(|c| c == e) {
                return Err(index.error(e, "this component is required but the index lists none"));
            }
        }
        Ok(ModelFolder {
            root: root.to_path_buf(),
            kind,
            force_zeros_for_empty_prompt: index
                .bool_or("force_zeros_for_empty_prompt", kind == PipelineKind::StableDiffusionXl)?,
            requires_aesthetics_score: index.bool_or("requires_aesthetics_score", false)?,
            scheduler_class: match index.raw("scheduler") {
                Some(Value::Array(pair)) if pair.len() == 2 => pair[1].as_str().map(str::to_owned),
                _ => None,
            },
            components,
            single_file: None,
        })
    }

    /// A single-file checkpoint: its family from the header, no weight read.
    fn open_single_file(path: &Path) -> Result<ModelFolder> {
        let file = single_file::SingleFile::open(path, None)?;
        let kind = file.kind();
        let requires_aesthetics_score = file.detected.is_refiner();
        let components = match file.detected.text {
            single_file::TextLayout::SdxlPair => vec!["unet", "vae", "text_encoder", "text_encoder_2"],
            single_file::TextLayout::SdxlRefiner => vec!["unet", "vae", "text_encoder_2"],
            _ => vec!["unet", "vae", "text_encoder"],
        };
        Ok(ModelFolder {
            root: path.to_path_buf(),
            kind,
            components: components.into_iter().map(String::from).collect(),
            // The refiner's repo says `force_zeros_for_empty_prompt: false`.
            force_zeros_for_empty_prompt: kind == PipelineKind::StableDiffusionXl && !requires_aesthetics_score,
            requires_aesthetics_score,
            scheduler_class: None,
            single_file: Some(Box::new(file)),
        })
    }

    pub fn has(&self, component: &str) -> bool {
        self.components.iter().any(|c| c == component)
    }

    /// The name shown to users and written into PNGs: the folder name, or for a Hugging
    /// Face cache snapshot, the repo name.
    pub fn display_name(&self) -> String {
        display_name(&self.root)
    }

    /// The tokenizer whose window the prompt counter shows (the first one for SDXL), read
    /// without loading any weights.
    pub fn prompt_tokenizer(&self) -> Result<ClipTokenizer> {
        if let Some(file) = &self.single_file {
            return file.prompt_tokenizer();
        }
        let dir = if self.has("tokenizer") {
            "tokenizer"
        } else {
            "tokenizer_2"
        };
        ClipTokenizer::from_folder(&self.root.join(dir))
    }

    /// The tokenizers in the order of the text encoders (`lantern tokenize`).
    pub fn tokenizers(&self) -> Result<Vec<ClipTokenizer>> {
        if let Some(file) = &self.single_file {
            return file.tokenizers();
        }
        self.text_components()
            .into_iter()
            .map(|(tok, _, _)| ClipTokenizer::from_folder(&self.root.join(tok)))
            .collect()
    }

    /// Where the scheduler settings come from (named in errors): the file itself for a single
    /// file, whose family's settings are built in.
    pub fn scheduler_config_path(&self) -> PathBuf {
        if self.single_file.is_some() {
            return self.root.clone();
        }
        self.root.join("scheduler").join("scheduler_config.json")
    }

    /// The (tokenizer, text encoder) folder pairs in the order their outputs are concatenated.
    fn text_components(&self) -> Vec<(&'static str, &'static str, bool)> {
        match self.kind {
            PipelineKind::StableDiffusion => vec![("tokenizer", "text_encoder", false)],
            PipelineKind::StableDiffusionXl => {
                let mut v = Vec::new();
                if self.has("text_encoder") {
                    v.push(("tokenizer", "text_encoder", false));
                }
                v.push(("tokenizer_2", "text_encoder_2", true));
                v
            }
        }
    }
}

/// `…/models--org--name/snapshots/<rev>` → `name`; otherwise the folder's own name.
pub fn display_name(root: &Path) -> String {
    if let Some((repo_id, _)) = crate::hub::hf_cache::snapshot_of(root) {
        return repo_id.rsplit('/').next().unwrap_or(&repo_id).to_string();
    }
    // A single file is named by its stem, as A1111 names checkpoints.
    if root.is_file()
        && let Some(stem) = root.file_stem()
    {
        return stem.to_string_lossy().into_owned();
    }
    root.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| root.display().to_string())
}

/// One tokenizer with the text encoder it feeds.
pub struct TextEncoder {
    pub tokenizer: ClipTokenizer,
    pub model: ClipTextModel,
}

/// Compute settings for a load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub dtype: DType,
    pub device: Device,
    /// A separate VAE file (`*.vae.safetensors`) to decode with instead of the model's own.
    pub vae: Option<PathBuf>,
    /// What the UNet predicts, overriding what a single file's contents suggest.
    pub prediction: Option<single_file::Prediction>,
    /// A diffusers model folder of the same family whose text encoders (and tokenizers) a
    /// single file without its own uses.
    pub text_encoders: Option<PathBuf>,
    /// The tiny autoencoder (TAESD) for this model's latents: live previews and Draft
    /// decodes. Chosen by the CLI and the window from what is installed
    /// (`hub::taesd_for`); the load itself never searches.
    pub taesd: Option<PathBuf>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: DType::F32,
            device: Device::Cpu,
            vae: None,
            prediction: None,
            text_encoders: None,
            taesd: None,
        }
    }
}

impl LoadOptions {
    /// Whether a model loaded with `self` can serve a request for `other` as it is.
    pub fn same_load(&self, other: &LoadOptions) -> bool {
        self.dtype == other.dtype
            && self.device.same_device(&other.device)
            && self.vae == other.vae
            && self.prediction == other.prediction
            && self.text_encoders == other.text_encoders
            && self.taesd == other.taesd
    }
}

/// Which part is being loaded, for progress reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadStage {
    TextEncoder(usize),
    Unet,
    Vae,
}

/// Everything a generation needs, loaded once and reused.
pub struct LoadedModel {
    pub folder: ModelFolder,
    pub text_encoders: Vec<TextEncoder>,
    pub unet: Unet,
    pub vae: VaeDecoder,
    pub scheduler_config: Value,
    pub options: LoadOptions,
    /// A short identifier of the UNet weights (first 10 hex digits of a SHA-256).
    pub hash: String,
    /// A1111's `VAE hash` of the separate VAE file in `options.vae`, if one is used.
    pub vae_hash: Option<String>,
    /// The LoRAs merged into the weights now, and how to change them.
    pub lora: lora::Patcher,
    /// The tiny autoencoder for previews and Draft decodes, when one was given.
    pub taesd: taesd::ModelTaesd,
}

/// The TAESD in `options.taesd` for latents of `channels` channels enlarged `scale`× (see
/// [`taesd::ModelTaesd`]: a broken one does not fail the load).
fn load_taesd(options: &LoadOptions, channels: usize, scale: usize) -> taesd::ModelTaesd {
    taesd::ModelTaesd::load(
        options.taesd.as_deref(),
        options.dtype,
        &options.device,
        channels,
        scale,
    )
}

/// The separate VAE file's A1111 hash (cached like a checkpoint's); `None` without one, or
/// when it cannot be read (the load itself would have failed first).
fn vae_file_hash(options: &LoadOptions) -> Option<String> {
    let file = options.vae.as_deref().filter(|f| f.is_file())?;
    single_file::hash::model_hash(file).ok()
}

impl LoadedModel {
    pub fn load(root: &Path, options: LoadOptions, on_stage: &mut dyn FnMut(LoadStage)) -> Result<LoadedModel> {
        let folder = ModelFolder::open(root)?;
        if folder.single_file.is_some() {
            return single_file::load(folder, options, on_stage);
        }
        let prefer = variant_preference(options.dtype);
        let sched_path = folder.scheduler_config_path();
        // diffusers writes Python's -Infinity into some scheduler configs; this reader takes it.
        let mut scheduler_config = crate::schedulers::read_config(&sched_path)?;
        if let Some(p) = options.prediction {
            scheduler_config["prediction_type"] = Value::from(p.as_str());
        }
        adopt_index_scheduler_class(&mut scheduler_config, folder.scheduler_class.as_deref());

        // Every component's config first, checked against the others, so a model whose parts
        // disagree is refused before any weight is read or any kernel runs.
        let mut text_parts = Vec::new();
        for (tok_dir, enc_dir, projection) in folder.text_components() {
            let tokenizer = ClipTokenizer::from_folder(&folder.root.join(tok_dir))?;
            let dir = folder.root.join(enc_dir);
            let config = ClipTextConfig::read(&dir.join("config.json"), projection)?;
            text_parts.push((tokenizer, dir, config));
        }
        let unet_dir = folder.root.join("unet");
        let unet_config = UnetConfig::read(&unet_dir.join("config.json"))?;
        let vae_dir = folder.root.join("vae");
        let vae_config = VaeConfig::read(&vae_dir.join("config.json"))?;
        let encoder_configs: Vec<(PathBuf, &ClipTextConfig, &ClipTokenizer)> = text_parts
            .iter()
            .map(|(tok, dir, config)| (dir.join("config.json"), config, tok))
            .collect();
        check_components(&folder, &encoder_configs, &unet_config, &vae_config)?;

        let mut text_encoders = Vec::new();
        let mut lora_parts = Vec::new();
        for (i, (tokenizer, dir, config)) in text_parts.into_iter().enumerate() {
            on_stage(LoadStage::TextEncoder(i));
            let w = Weights::open(&dir, "model", prefer, options.dtype, &options.device)?.tracked();
            text_encoders.push(TextEncoder {
                tokenizer,
                model: ClipTextModel::load(&w, config)?,
            });
            lora_parts.push((lora::Part::TextEncoder(i), w));
        }

        on_stage(LoadStage::Unet);
        let unet_w = Weights::open(
            &unet_dir,
            "diffusion_pytorch_model",
            prefer,
            options.dtype,
            &options.device,
        )?
        .tracked();
        let hash = weights_hash(&unet_w)?;
        let lora_shape = (unet_config.layers_per_block[0], unet_config.context_dim());
        let unet = Unet::load(&unet_w, unet_config)?;
        lora_parts.push((lora::Part::Unet, unet_w));

        on_stage(LoadStage::Vae);
        let vae_dtype = if vae_config.force_upcast {
            DType::F32
        } else {
            options.dtype
        };
        let vae = match &options.vae {
            Some(file) => single_file::load_vae_file(file, vae_config.scaling_factor, &options)?,
            None => {
                let vae_w = Weights::open(&vae_dir, "diffusion_pytorch_model", prefer, vae_dtype, &options.device)?;
                VaeDecoder::load(&vae_w, vae_config)?
            }
        };

        let taesd = load_taesd(&options, unet.config().out_channels, vae.config().scale_factor());
        Ok(LoadedModel {
            folder,
            text_encoders,
            unet,
            vae,
            scheduler_config,
            vae_hash: vae_file_hash(&options),
            options,
            hash,
            lora: lora::Patcher::new(lora_parts, lora_shape.0, lora_shape.1),
            taesd,
        })
    }

    pub fn kind(&self) -> PipelineKind {
        self.folder.kind
    }

    pub fn name(&self) -> String {
        self.folder.display_name()
    }

    /// The separate VAE's file name as A1111 records it (`VAE: name.vae.safetensors`).
    /// A VAE folder is named by its model: `stable-diffusion-v1-5/vae`.
    pub fn vae_name(&self) -> Option<String> {
        let file = self.options.vae.as_deref()?;
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        if file.is_dir() {
            let (model, vae) = match file.file_name().is_some_and(|n| n == "vae") {
                true => (file.parent()?, file),
                false => (file, &*file.join("vae")),
            };
            return Some(format!("{}/{}", name(model)?, name(vae)?));
        }
        name(file)
    }

    /// The weights of the VAE this model decodes with (the separate VAE in `options.vae`, the
    /// checkpoint's `first_stage_model.*`, or the folder's `vae/`), in the diffusers layout and
    /// the dtype the decoder runs in; mapped again, nothing read until a tensor is asked for.
    pub fn vae_weights(&self) -> Result<Weights> {
        let config = self.vae.config();
        let o = &self.options;
        if let Some(file) = &o.vae {
            return Ok(single_file::vae_file_weights(file, config.scaling_factor, o)?.0);
        }
        if let Some(file) = &self.folder.single_file {
            return Ok(single_file::own_vae_weights(file, o)?.0);
        }
        let dtype = if config.force_upcast { DType::F32 } else { o.dtype };
        let prefer = variant_preference(o.dtype);
        Weights::open(
            &self.folder.root.join("vae"),
            "diffusion_pytorch_model",
            prefer,
            dtype,
            &o.device,
        )
    }

    /// The encoder of the VAE this model decodes with (same config, same scaling), for
    /// starting from a picture; loaded on demand, never by [`LoadedModel::load`].
    pub fn load_vae_encoder(&self) -> Result<vae_encoder::VaeEncoder> {
        vae_encoder::VaeEncoder::load(&self.vae_weights()?, self.vae.config().clone())
    }

    /// The Hub repo of the tiny autoencoder made for this model's latents.
    pub fn taesd_repo(&self) -> &'static str {
        match self.kind() {
            PipelineKind::StableDiffusion => "madebyollin/taesd",
            PipelineKind::StableDiffusionXl => "madebyollin/taesdxl",
        }
    }

    /// Image pixels per latent pixel (8 for SD).
    pub fn vae_scale_factor(&self) -> usize {
        self.vae.config().scale_factor()
    }

    /// The channels of the latents the sampler walks (the VAE's).
    pub fn latent_channels(&self) -> usize {
        self.unet.config().out_channels
    }

    /// The channels the UNet reads: the latents, plus the mask and the masked picture's
    /// latents for an inpainting model.
    pub fn unet_input_channels(&self) -> usize {
        self.unet.config().in_channels
    }

    /// An inpainting model (sd-1.5-inpainting, SDXL inpainting): its UNet reads 2·C + 1
    /// channels.
    pub fn is_inpainting(&self) -> bool {
        self.unet_input_channels() == 2 * self.latent_channels() + 1
    }

    /// The size the model was trained at: UNet sample size × VAE factor (512 for SD 1.5, 768
    /// for SD 2.1, 1024 for SDXL), 512 when unknown.
    pub fn native_size(&self) -> (u32, u32) {
        let side = self
            .unet
            .config()
            .sample_size
            .map(|s| (s * self.vae_scale_factor()) as u32)
            .filter(|&s| (64..=2048).contains(&s))
            .unwrap_or(512);
        (side, side)
    }
}

/// diffusers builds the scheduler class `model_index.json` names, from the config file's
/// fields (its `from_config`): when the two files disagree, the index wins. A class we do not
/// have leaves the file's own (and is logged).
fn adopt_index_scheduler_class(config: &mut Value, index_class: Option<&str>) {
    let Some(class) = index_class else { return };
    let own = config.get("_class_name").and_then(Value::as_str).unwrap_or_default();
    if own == class {
        return;
    }
    if crate::schedulers::SamplerClass::from_class_name(class).is_some() {
        tracing::info!(
            index = class,
            config = own,
            "model_index.json names another scheduler class; using it, as diffusers does"
        );
        config["_class_name"] = Value::from(class);
    } else {
        tracing::warn!(
            index = class,
            config = own,
            "model_index.json names a scheduler class Lantern lacks; using the config's"
        );
    }
}

/// The components must agree with each other before any of them runs: the UNet denoises the
/// VAE's latents, its cross-attention reads the text encoders' output, SDXL's added embedding
/// reads the second encoder's projection and six size embeddings, and every token id must
/// fall inside its encoder's tables. `encoders` holds each encoder's config path, config and
/// tokenizer, in the order their outputs are concatenated.
fn check_components(
    folder: &ModelFolder,
    encoders: &[(PathBuf, &ClipTextConfig, &ClipTokenizer)],
    unet: &UnetConfig,
    vae: &VaeConfig,
) -> Result<()> {
    let unet_json = folder.root.join("unet").join("config.json");
    let unet_error = |field: &str, message: String| Error::config(&unet_json, field, message);
    let latent = vae.latent_channels;
    if unet.out_channels != latent {
        return Err(unet_error(
            "out_channels",
            format!(
                "is {} but the VAE's latent_channels is {latent} (vae/config.json)",
                unet.out_channels
            ),
        ));
    }
    // An inpainting UNet also reads the mask and the masked picture's latents.
    if unet.in_channels != latent && unet.in_channels != 2 * latent + 1 {
        return Err(unet_error(
            "in_channels",
            format!(
                "is {} but the VAE's latent_channels is {latent} (vae/config.json): a UNet reads {latent} channels, or {} for inpainting",
                unet.in_channels,
                2 * latent + 1
            ),
        ));
    }

    let width: usize = encoders.iter().map(|(_, c, _)| c.hidden_size).sum();
    let n = unet.cross_attention_dim.len();
    for (i, &dim) in unet.cross_attention_dim.iter().enumerate() {
        // Entry i serves down block i, up block n-1-i, and (the last) the mid block.
        let used = unet.down_blocks[i] == DownBlockKind::CrossAttn
            || unet.up_blocks[n - 1 - i] == DownBlockKind::CrossAttn
            || (i + 1 == n && unet.mid_block == MidBlockKind::CrossAttn);
        if used && dim != width {
            let which = if n > 1 { format!(" (entry {i})") } else { String::new() };
            return Err(unet_error(
                "cross_attention_dim",
                format!("{dim}{which} does not match the text encoder(s)' {width}-wide embeddings"),
            ));
        }
    }

    match (&unet.text_time, folder.kind) {
        (Some(tt), PipelineKind::StableDiffusionXl) => {
            let pooled = encoders.last().and_then(|(_, c, _)| c.projection_dim).unwrap_or(0);
            // Original size, crop and target size; the refiner has an aesthetic score instead
            // of the target size.
            let ids = if folder.requires_aesthetics_score { 5 } else { 6 };
            let want = tt
                .addition_time_embed_dim
                .checked_mul(ids)
                .and_then(|t| t.checked_add(pooled));
            if want != Some(tt.projection_class_embeddings_input_dim) {
                return Err(unet_error(
                    "projection_class_embeddings_input_dim",
                    format!(
                        "is {} but text_encoder_2's projection_dim {pooled} + {ids} × addition_time_embed_dim {} makes {}",
                        tt.projection_class_embeddings_input_dim,
                        tt.addition_time_embed_dim,
                        want.map_or("more".to_string(), |w| w.to_string())
                    ),
                ));
            }
        }
        (Some(_), PipelineKind::StableDiffusion) => {
            return Err(unet_error(
                "addition_embed_type",
                "text_time (SDXL) needs a StableDiffusionXLPipeline; model_index.json names StableDiffusionPipeline"
                    .into(),
            ));
        }
        (None, _) => {}
    }

    for (path, config, tokenizer) in encoders {
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(Error::config(
                path,
                "vocab_size",
                format!(
                    "is {} but the tokenizer has {} tokens",
                    config.vocab_size,
                    tokenizer.vocab_size()
                ),
            ));
        }
        if tokenizer.max_length() > config.max_position_embeddings {
            return Err(Error::config(
                path,
                "max_position_embeddings",
                format!(
                    "is {} but the tokenizer makes {}-token windows",
                    config.max_position_embeddings,
                    tokenizer.max_length()
                ),
            ));
        }
    }
    Ok(())
}

/// The text encoders of the diffusers model folder `donor` (tokenizer, tracked weights, config
/// each), for a single file that has none: read as that model reads them.
fn borrowed_text_encoders(
    donor: &Path,
    options: &LoadOptions,
) -> Result<Vec<(ClipTokenizer, Weights, ClipTextConfig)>> {
    let folder = ModelFolder::open(donor)?;
    if folder.single_file.is_some() {
        return Err(Error::model(
            donor,
            "text encoders are borrowed from a diffusers model folder only",
        ));
    }
    let prefer = variant_preference(options.dtype);
    folder
        .text_components()
        .into_iter()
        .map(|(tok_dir, enc_dir, projection)| {
            let tokenizer = ClipTokenizer::from_folder(&folder.root.join(tok_dir))?;
            let dir = folder.root.join(enc_dir);
            let config = ClipTextConfig::read(&dir.join("config.json"), projection)?;
            let w = Weights::open(&dir, "model", prefer, options.dtype, &options.device)?.tracked();
            Ok((tokenizer, w, config))
        })
        .collect()
}

/// Which weight files a load in `dtype` reads when a folder has both.
fn variant_preference(dtype: DType) -> VariantPreference {
    if dtype == DType::F32 {
        VariantPreference::FullPrecision
    } else {
        VariantPreference::Fp16
    }
}

/// The `Model hash` a picture made with the model at `path` (loaded in `dtype`) records, when
/// it can be known cheaply: a folder's sampled UNet hash (a few MiB read), a single file's
/// A1111 hash if it was hashed before. `None` otherwise; restoring then matches by name.
pub fn known_model_hash(path: &Path, dtype: DType) -> Option<String> {
    let folder = ModelFolder::open(path).ok()?;
    if let Some(file) = &folder.single_file {
        return single_file::hash::cached_model_hash(&file.path);
    }
    let unet = Weights::open(
        &folder.root.join("unet"),
        "diffusion_pytorch_model",
        variant_preference(dtype),
        dtype,
        &Device::Cpu,
    )
    .ok()?;
    weights_hash(&unet).ok()
}

/// Identifies the UNet weights without reading gigabytes: the file sizes, the header, and
/// samples spread through the tensor data, so a retrained checkpoint of the same shape gets
/// another hash. A Hugging Face cache blob is already named by its SHA-256; we use that.
fn weights_hash(w: &Weights) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Seek, SeekFrom};
    let path = w.path();
    if let Ok(target) = std::fs::read_link(path)
        && let Some(name) = target.file_name().and_then(|n| n.to_str())
        && name.len() == 64
        && name.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Ok(name[..10].to_string());
    }
    const SAMPLES: u64 = 32;
    const SAMPLE_LEN: usize = 64 << 10;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; SAMPLE_LEN];
    for file in w.files() {
        let io = |e| Error::io(file, e);
        let mut f = std::fs::File::open(file).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        hasher.update(len.to_le_bytes());
        for i in 0..SAMPLES {
            let offset = len.saturating_sub(SAMPLE_LEN as u64) * i / (SAMPLES - 1);
            f.seek(SeekFrom::Start(offset)).map_err(io)?;
            let n = f.read(&mut buf).map_err(io)?;
            hasher.update(&buf[..n]);
        }
    }
    let digest = hasher.finalize();
    Ok(digest.iter().take(5).map(|b| format!("{b:02x}")).collect())
}
