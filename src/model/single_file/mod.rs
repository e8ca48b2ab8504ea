//! Single-file checkpoints: one `.safetensors` in the original LDM/CompVis layout (what civitai
//! and A1111 users have), read as a model with no other file.
//!
//! - [`header`] reads and checks the file's header alone;
//! - [`detect`] decides the family (SD 1.x, 2.x, SDXL, Turbo, v-prediction) from names,
//!   shapes and metadata;
//! - [`arch`] turns shapes into the diffusers configs the ordinary loaders take, with the
//!   family's standard settings from `assets/single_file_families.json`;
//! - [`keymap`] maps every diffusers tensor name to where it lives in the file; the file is
//!   then memory-mapped once and each tensor copied out once when a module asks for it, as for
//!   a folder (so loading peaks at the same memory);
//! - [`tokenizer`] provides CLIP's tokenizer from the embedded BPE merges;
//! - [`hash`] computes A1111's model hash (SHA-256 of the file), cached.
//!
//! EMA: un-pruned files carry `model_ema.*` copies of the UNet; like A1111 (whose inference
//! configs set `use_ema: False`) and diffusers' default, the plain `model.diffusion_model.*`
//! weights are used and the EMA copies never read.

pub mod arch;
pub mod detect;
pub mod hash;
pub mod header;
pub mod keymap;
pub mod tokenizer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use candle_core::DType;
use serde_json::Value;

pub use self::detect::{Arch, Detected, Prediction, TextLayout};
use self::header::Header;
use super::clip::{ClipTextConfig, ClipTextModel};
use super::config::ConfigFile;
use super::unet::{Unet, UnetConfig};
use super::vae::{VaeConfig, VaeDecoder};
use super::weights::{Mapped, Weights};
use super::{LoadOptions, LoadStage, LoadedModel, ModelFolder, PipelineKind, TextEncoder};
use crate::error::{Error, Result};
use crate::text::ClipTokenizer;

const FAMILIES: &str = include_str!("../../../assets/single_file_families.json");

fn families() -> &'static Value {
    static F: OnceLock<Value> = OnceLock::new();
    F.get_or_init(|| serde_json::from_str(FAMILIES).expect("assets/single_file_families.json is valid JSON"))
}

/// Extensions of pickled checkpoints, refused unopened.
const PICKLES: [&str; 5] = ["ckpt", "pt", "pth", "bin", "pkl"];

/// Whether `path` names a pickled checkpoint (by extension).
pub fn is_pickle(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PICKLES.contains(&e.to_ascii_lowercase().as_str()))
}

/// The one-line refusal of a pickle.
pub fn pickle_error(path: &Path) -> Error {
    Error::model(
        path,
        "a pickled checkpoint: opening one can run any code it contains, so Lantern never loads them; use a .safetensors version of the same model (most are published as one)",
    )
}

/// A single-file checkpoint, looked at but not loaded.
#[derive(Clone, Debug)]
pub struct SingleFile {
    pub path: std::path::PathBuf,
    pub header: Header,
    pub detected: Detected,
}

impl SingleFile {
    /// Reads the header and decides the family; `prediction` is the user's override.
    pub fn open(path: &Path, prediction: Option<Prediction>) -> Result<SingleFile> {
        if is_pickle(path) {
            return Err(pickle_error(path));
        }
        let meta = std::fs::metadata(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::model(path, "model file does not exist")
            } else {
                Error::io(path, e)
            }
        })?;
        if !meta.is_file() {
            return Err(Error::model(path, "not a regular file"));
        }
        let header = header::read(path)?;
        let detected = detect::detect(path, &header, prediction)?;
        Ok(SingleFile {
            path: path.to_path_buf(),
            header,
            detected,
        })
    }

    pub fn kind(&self) -> PipelineKind {
        match self.detected.arch {
            Arch::Sdxl => PipelineKind::StableDiffusionXl,
            _ => PipelineKind::StableDiffusion,
        }
    }

    /// The family's standard settings.
    pub fn family(&self) -> &'static Value {
        &families()[self.detected.family_id()]
    }

    /// The scheduler config the family ships, with the detected (or chosen) prediction type.
    pub fn scheduler_config(&self) -> Value {
        let mut s = self.family()["scheduler"].clone();
        s["prediction_type"] = Value::from(self.detected.prediction.as_str());
        s
    }

    /// (tokenizer kind, source prefix, is OpenCLIP, component name) per text encoder, in the
    /// order their outputs are concatenated.
    fn text_parts(&self) -> Vec<(&'static Value, &'static str, &'static str)> {
        let encs = self.family()["text_encoders"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        match self.detected.text {
            TextLayout::Clip => vec![(&encs[0], "cond_stage_model.transformer.", "text_encoder")],
            TextLayout::OpenClip => vec![(&encs[0], "cond_stage_model.model.", "text_encoder")],
            TextLayout::SdxlPair => vec![
                (&encs[0], "conditioner.embedders.0.transformer.", "text_encoder"),
                (&encs[1], "conditioner.embedders.1.model.", "text_encoder_2"),
            ],
            TextLayout::SdxlRefiner => vec![(&encs[0], "conditioner.embedders.0.model.", "text_encoder_2")],
            TextLayout::Missing => Vec::new(),
        }
    }

    /// The tokenizer whose window the prompt counter shows (the first).
    pub fn prompt_tokenizer(&self) -> Result<ClipTokenizer> {
        let encs = self.family()["text_encoders"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let kind = encs.first().and_then(|e| e["tokenizer"].as_str()).unwrap_or("pad-eos");
        tokenizer::load(kind, &self.path)
    }

    /// Every tokenizer, in the order of the text encoders.
    pub fn tokenizers(&self) -> Result<Vec<ClipTokenizer>> {
        let encs = self.family()["text_encoders"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        encs.iter()
            .map(|e| tokenizer::load(e["tokenizer"].as_str().unwrap_or("pad-eos"), &self.path))
            .collect()
    }

    fn config(&self, component: &str, value: std::result::Result<Value, String>) -> Result<ConfigFile> {
        let v = value.map_err(|m| Error::model(&self.path, format!("{component}: {m}")))?;
        Ok(ConfigFile::from_value(&self.path.join(component), v))
    }

    /// The pooled-embedding width SDXL's size conditioning is built around.
    fn pooled_width(&self) -> Option<usize> {
        [
            "conditioner.embedders.1.model.text_projection",
            "conditioner.embedders.0.model.text_projection",
        ]
        .into_iter()
        .find_map(|name| self.header.shape(name))
        .and_then(|s| s.get(1).copied())
    }

    /// The UNet's config, from the file's shapes.
    pub fn unet_config(&self) -> Result<UnetConfig> {
        self.unet_config_pooled(self.pooled_width())
    }

    /// The UNet's config when SDXL's pooled text width is known from elsewhere (text encoders
    /// borrowed from a model folder: its `text_encoder_2` projection).
    fn unet_config_pooled(&self, pooled_width: Option<usize>) -> Result<UnetConfig> {
        let v = arch::unet(&self.header, self.family(), pooled_width);
        UnetConfig::from_config(&self.config("unet", v)?)
    }

    /// The text encoders' configs (with whether each has a projection).
    pub fn text_configs(&self) -> Result<Vec<ClipTextConfig>> {
        self.text_parts()
            .into_iter()
            .map(|(enc, src, name)| {
                let open = src.ends_with(".model.");
                let v = if open {
                    arch::open_clip(&self.header, src, enc)
                } else {
                    arch::clip(&self.header, src, enc)
                };
                let projection = enc.get("projection").and_then(Value::as_bool) == Some(true);
                ClipTextConfig::from_config(&self.config(name, v)?, projection)
            })
            .collect()
    }

    /// Every tensor the model reads, by its diffusers name → where it is in the file.
    fn mapping(&self, lpb: usize) -> HashMap<String, Mapped> {
        let mut m = HashMap::new();
        keymap::unet(&self.header, lpb, &mut m);
        if let Some(prefix) = self.detected.vae_prefix {
            keymap::vae(&self.header, prefix, &mut m);
        }
        for (_, src, name) in self.text_parts() {
            if src.ends_with("transformer.") {
                keymap::clip(&self.header, src, name, &mut m);
            } else {
                keymap::open_clip(&self.header, src, name, &mut m);
            }
        }
        m
    }
}

/// A separate VAE (`*.vae.safetensors`, LDM layout with or without `first_stage_model.`; or a
/// diffusers VAE folder, or a diffusers model folder whose `vae/` is used) decoded with
/// `scaling_factor` (the model's).
pub fn load_vae_file(path: &Path, scaling_factor: f64, options: &LoadOptions) -> Result<VaeDecoder> {
    let (w, config) = vae_file_weights(path, scaling_factor, options)?;
    VaeDecoder::load(&w, config)
}

/// A separate VAE's weights seen in the diffusers layout (`decoder.*`, `encoder.*`,
/// `quant_conv.*`, …; mapped, nothing read yet) and its config with `scaling_factor`: what
/// [`load_vae_file`] decodes with, and what the encoder reads.
pub fn vae_file_weights(path: &Path, scaling_factor: f64, options: &LoadOptions) -> Result<(Weights, VaeConfig)> {
    if path.is_dir() {
        return vae_folder_weights(path, scaling_factor, options);
    }
    if is_pickle(path) {
        return Err(pickle_error(path));
    }
    let h = header::read(path)?;
    let Some(prefix) = ["", "first_stage_model.", "vae."].into_iter().find(|p| {
        h.has(&format!("{p}decoder.conv_in.weight")) && h.has(&format!("{p}decoder.up.0.block.0.conv1.weight"))
    }) else {
        let why = if h.has("decoder.up_blocks.0.resnets.0.conv1.weight") {
            "a VAE in the diffusers layout; choose a VAE in the original layout (decoder.up.*), as A1111 uses, or the model's own"
        } else if h.has("model.diffusion_model.input_blocks.0.0.weight") {
            "a whole model checkpoint, not a VAE"
        } else {
            "not a VAE (no decoder.* tensors)"
        };
        return Err(Error::model(path, why));
    };
    let fam = serde_json::json!({"vae": {"scaling_factor": scaling_factor}});
    let v = arch::vae(&h, prefix, &fam).map_err(|m| Error::model(path, format!("VAE: {m}")))?;
    let config = VaeConfig::from_config(&ConfigFile::from_value(path, v))?;
    let mut m = HashMap::new();
    keymap::vae(&h, prefix, &mut m);
    let dtype = if config.force_upcast { DType::F32 } else { options.dtype };
    let w = Weights::mapped(path, m, dtype, &options.device)?;
    Ok((w.pp("vae"), config))
}

/// A VAE in the diffusers layout: `config.json` and `diffusion_pytorch_model*.safetensors`,
/// in `dir` or in its `vae/` (a whole model folder lends its VAE).
fn vae_folder_weights(dir: &Path, scaling_factor: f64, options: &LoadOptions) -> Result<(Weights, VaeConfig)> {
    let vae_dir = if dir.join("vae").join("config.json").is_file() {
        dir.join("vae")
    } else {
        dir.to_path_buf()
    };
    if !vae_dir.join("config.json").is_file() {
        return Err(Error::model(
            dir,
            "not a VAE folder (no config.json, and no vae/ with one)",
        ));
    }
    let mut config = VaeConfig::read(&vae_dir.join("config.json"))?;
    config.scaling_factor = scaling_factor;
    let dtype = if config.force_upcast { DType::F32 } else { options.dtype };
    let prefer = super::variant_preference(options.dtype);
    let w = Weights::open(&vae_dir, "diffusion_pytorch_model", prefer, dtype, &options.device)?;
    Ok((w, config))
}

/// The checkpoint's own VAE (`first_stage_model.*`) seen in the diffusers layout, alone
/// (mapped, nothing read yet), in the dtype its decoder runs in; for the encoder.
pub(super) fn own_vae_weights(file: &SingleFile, options: &LoadOptions) -> Result<(Weights, VaeConfig)> {
    let path = &file.path;
    let Some(prefix) = file.detected.vae_prefix else {
        return Err(Error::model(
            path,
            "this checkpoint has no VAE (no first_stage_model.* tensors)",
        ));
    };
    let v = arch::vae(&file.header, prefix, file.family());
    let config = VaeConfig::from_config(&file.config("vae", v)?)?;
    let mut m = HashMap::new();
    keymap::vae(&file.header, prefix, &mut m);
    let dtype = if config.force_upcast { DType::F32 } else { options.dtype };
    let w = Weights::mapped(path, m, dtype, &options.device)?;
    Ok((w.pp("vae"), config))
}

/// The pooled text width a diffusers model folder's second text encoder projects to (SDXL).
fn donor_pooled_width(donor: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(donor.join("text_encoder_2").join("config.json")).ok()?;
    let config: Value = serde_json::from_str(&text).ok()?;
    config["projection_dim"].as_u64().map(|n| n as usize)
}

/// Loads a single-file checkpoint (the folder value `open` made for it).
pub(super) fn load(
    folder: ModelFolder,
    options: LoadOptions,
    on_stage: &mut dyn FnMut(LoadStage),
) -> Result<LoadedModel> {
    let file = SingleFile::open(&folder.root, options.prediction)?;
    let path = file.path.clone();
    // The hash reads the whole file once; it runs beside the load.
    std::thread::scope(|scope| {
        let hashing = scope.spawn(|| hash::model_hash(&path));
        let loaded = load_parts(&file, &options, on_stage);
        let hash = hashing
            .join()
            .unwrap_or_else(|_| Err(Error::invalid("hashing the model file failed")));
        let (text_encoders, unet, vae, lora) = loaded?;
        let taesd = super::load_taesd(&options, unet.config().out_channels, vae.config().scale_factor());
        Ok(LoadedModel {
            lora,
            scheduler_config: file.scheduler_config(),
            folder,
            text_encoders,
            unet,
            vae,
            vae_hash: super::vae_file_hash(&options),
            options,
            hash: hash?,
            taesd,
        })
    })
}

fn load_parts(
    file: &SingleFile,
    options: &LoadOptions,
    on_stage: &mut dyn FnMut(LoadStage),
) -> Result<(Vec<TextEncoder>, Unet, VaeDecoder, crate::model::lora::Patcher)> {
    let path = &file.path;
    if file.detected.text == TextLayout::Missing && options.text_encoders.is_none() {
        return Err(Error::model(
            path,
            "this checkpoint has no text encoder (no cond_stage_model.* or conditioner.* tensors); install a diffusers model of the same family to lend it one, or use a checkpoint that includes it",
        ));
    }
    let unet_config = match (&options.text_encoders, file.detected.text) {
        (Some(donor), TextLayout::Missing) => file.unet_config_pooled(donor_pooled_width(donor))?,
        _ => file.unet_config()?,
    };
    let text_configs = file.text_configs()?;
    let scaling = file.family()["vae"]["scaling_factor"].as_f64().unwrap_or(0.18215);
    if file.detected.vae_prefix.is_none() && options.vae.is_none() {
        return Err(Error::model(
            path,
            "this checkpoint has no VAE (no first_stage_model.* tensors); choose a separate VAE file (--vae FILE.vae.safetensors, or ⚙ beside the model in the window)",
        ));
    }
    let w = Weights::mapped(
        path,
        file.mapping(unet_config.layers_per_block[0]),
        options.dtype,
        &options.device,
    )?;

    let mut text_encoders = Vec::new();
    let mut lora_parts = Vec::new();
    match (&options.text_encoders, file.detected.text) {
        (Some(donor), TextLayout::Missing) => {
            for (i, (tokenizer, part, config)) in super::borrowed_text_encoders(donor, options)?.into_iter().enumerate()
            {
                on_stage(LoadStage::TextEncoder(i));
                text_encoders.push(TextEncoder {
                    tokenizer,
                    model: ClipTextModel::load(&part, config)?,
                });
                lora_parts.push((crate::model::lora::Part::TextEncoder(i), part));
            }
        }
        _ => {
            let tokenizers = file.tokenizers()?;
            let names: Vec<&str> = file.text_parts().iter().map(|p| p.2).collect();
            for (i, ((config, tokenizer), name)) in text_configs.into_iter().zip(tokenizers).zip(names).enumerate() {
                on_stage(LoadStage::TextEncoder(i));
                let part = w.pp(name).tracked();
                text_encoders.push(TextEncoder {
                    tokenizer,
                    model: ClipTextModel::load(&part, config)?,
                });
                lora_parts.push((crate::model::lora::Part::TextEncoder(i), part));
            }
        }
    }
    let width: usize = text_encoders.iter().map(|e| e.model.config().hidden_size).sum();
    if width != unet_config.context_dim() {
        return Err(Error::model(
            path,
            format!(
                "the UNet's cross-attention takes {}-wide text but the text encoder(s) give {width}",
                unet_config.context_dim()
            ),
        ));
    }

    on_stage(LoadStage::Unet);
    let (lpb, context_dim) = (unet_config.layers_per_block[0], unet_config.context_dim());
    let unet_w = w.pp("unet").tracked();
    let unet = Unet::load(&unet_w, unet_config)?;
    lora_parts.push((crate::model::lora::Part::Unet, unet_w));
    let lora = crate::model::lora::Patcher::new(lora_parts, lpb, context_dim);

    on_stage(LoadStage::Vae);
    let vae = match &options.vae {
        Some(vae_path) => load_vae_file(vae_path, scaling, options)?,
        None => {
            let prefix = file.detected.vae_prefix.unwrap_or("first_stage_model.");
            let v = arch::vae(&file.header, prefix, file.family());
            let config = VaeConfig::from_config(&file.config("vae", v)?)?;
            let dtype = if config.force_upcast { DType::F32 } else { options.dtype };
            VaeDecoder::load(&w.pp("vae").with_dtype(dtype), config)?
        }
    };
    Ok((text_encoders, unet, vae, lora))
}
