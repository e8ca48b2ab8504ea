//! Which model a single-file checkpoint is, from its tensor names, shapes and metadata.
//!
//! - **SD 1.x**: an LDM UNet (`model.diffusion_model.*`) with CLIP ViT-L
//!   (`cond_stage_model.transformer.*`); with no text encoder, a 768-wide cross-attention.
//! - **SD 2.x**: OpenCLIP (`cond_stage_model.model.*`); with no text encoder, a 1024-wide
//!   cross-attention or linear transformer projections.
//! - **SDXL**: a UNet with `label_emb` (pooled text + size conditioning) and
//!   `conditioner.embedders.1.model.*` (OpenCLIP bigG beside CLIP ViT-L in `embedders.0`).
//!   The refiner: OpenCLIP bigG alone in `embedders.0`, and an aesthetic score among the size
//!   numbers (family `sdxl-refiner`); it refines pictures (img2img) only.
//! - **Turbo**: the file name or its `modelspec.*` metadata says "turbo" (the weights are
//!   shaped like SD 2.1 / SDXL's).
//! - **v-prediction** (SD 2.x 768 models): a `v_pred` marker tensor, or `modelspec` metadata
//!   (`prediction_type`, an architecture ending in `-v`), else, for SD 2.x, v like diffusers
//!   (the 768 models are the common ones) unless the name says `512`/`base` or Turbo. The
//!   caller's `--prediction` overrides all of it.

use std::path::Path;

use serde::Serialize;

use super::header::Header;
use crate::error::{Error, Result};

pub const UNET: &str = "model.diffusion_model.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    Sd1,
    Sd2,
    Sdxl,
}

/// What the UNet predicts (the scheduler's `prediction_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Prediction {
    #[serde(rename = "epsilon")]
    Epsilon,
    #[serde(rename = "v_prediction")]
    V,
}

impl Prediction {
    /// `epsilon`/`eps` or `v`/`v_prediction`.
    pub fn parse(s: &str) -> Option<Prediction> {
        match s.trim().to_ascii_lowercase().as_str() {
            "epsilon" | "eps" => Some(Prediction::Epsilon),
            "v" | "v_prediction" | "v-prediction" => Some(Prediction::V),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Prediction::Epsilon => "epsilon",
            Prediction::V => "v_prediction",
        }
    }
}

/// Where the text encoder(s) sit in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextLayout {
    /// `cond_stage_model.transformer.*` (SD 1.x, transformers' CLIP names).
    Clip,
    /// `cond_stage_model.model.*` (SD 2.x, OpenCLIP names).
    OpenClip,
    /// `conditioner.embedders.0.transformer.*` + `conditioner.embedders.1.model.*` (SDXL).
    SdxlPair,
    /// `conditioner.embedders.0.model.*` alone (the SDXL refiner's OpenCLIP bigG).
    SdxlRefiner,
    /// None in the file.
    Missing,
}

#[derive(Clone, Debug)]
pub struct Detected {
    pub arch: Arch,
    pub turbo: bool,
    pub prediction: Prediction,
    /// Why that prediction type (shown by `models list` and in errors).
    pub prediction_reason: &'static str,
    pub text: TextLayout,
    /// The VAE's prefix in the file (`first_stage_model.` or `vae.`), when it has one.
    pub vae_prefix: Option<&'static str>,
}

impl Detected {
    /// The SDXL refiner (its text encoder says so).
    pub fn is_refiner(&self) -> bool {
        self.text == TextLayout::SdxlRefiner
    }

    /// The key of the family's standard settings in `assets/single_file_families.json`.
    pub fn family_id(&self) -> &'static str {
        if self.is_refiner() {
            return "sdxl-refiner";
        }
        match (self.arch, self.turbo, self.prediction) {
            (Arch::Sd1, _, _) => "sd1",
            (Arch::Sd2, true, _) => "sd-turbo",
            (Arch::Sd2, false, Prediction::V) => "sd2-v",
            (Arch::Sd2, false, Prediction::Epsilon) => "sd2",
            (Arch::Sdxl, true, _) => "sdxl-turbo",
            (Arch::Sdxl, false, _) => "sdxl",
        }
    }
}

/// Decides what `path` holds. `prediction` is the user's override.
pub fn detect(path: &Path, h: &Header, prediction: Option<Prediction>) -> Result<Detected> {
    let refuse = |what: &str| Error::model(path, what.to_string());
    let unet_in = format!("{UNET}input_blocks.0.0.weight");
    let Some(conv_in) = h.shape(&unet_in) else {
        return Err(refuse(&not_a_checkpoint(h)));
    };
    // 4 channels: text-to-image; 9: an inpainting model (latents, mask, masked picture).
    if conv_in.len() != 4 || (conv_in[1] != 4 && conv_in[1] != 9) {
        let ch = conv_in.get(1).copied().unwrap_or(0);
        return Err(refuse(&format!(
            "a UNet with {ch} input channels (an instruct-pix2pix or upscaler model); text-to-image (4 channels) and inpainting (9) checkpoints are supported"
        )));
    }
    let has_prefix = |p: &str| h.names().any(|n| n.starts_with(p));
    let text = if has_prefix("conditioner.embedders.1.model.") {
        TextLayout::SdxlPair
    } else if has_prefix("conditioner.embedders.0.model.") {
        TextLayout::SdxlRefiner
    } else if has_prefix("cond_stage_model.model.") {
        TextLayout::OpenClip
    } else if has_prefix("cond_stage_model.transformer.") {
        TextLayout::Clip
    } else {
        TextLayout::Missing
    };
    let adm = h.has(&format!("{UNET}label_emb.0.0.weight"));
    let context = h
        .names()
        .filter(|n| n.starts_with(UNET) && n.ends_with("attn2.to_k.weight"))
        .filter_map(|n| h.shape(n)?.get(1).copied())
        .next();
    let linear = h
        .names()
        .filter(|n| n.starts_with(UNET) && n.ends_with(".proj_in.weight"))
        .filter_map(|n| h.shape(n))
        .next()
        .is_some_and(|s| s.len() == 2);
    let arch = if adm {
        Arch::Sdxl
    } else {
        match text {
            TextLayout::OpenClip => Arch::Sd2,
            TextLayout::Clip => Arch::Sd1,
            TextLayout::SdxlPair | TextLayout::SdxlRefiner => {
                return Err(refuse(
                    "SDXL text encoders beside a UNet without SDXL's size conditioning (label_emb)",
                ));
            }
            TextLayout::Missing => match context {
                Some(1024) => Arch::Sd2,
                Some(768) => Arch::Sd1,
                _ if linear => Arch::Sd2,
                _ => Arch::Sd1,
            },
        }
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let meta = |k: &str| h.metadata.get(k).map(|s| s.to_ascii_lowercase());
    let arch_meta = meta("modelspec.architecture").unwrap_or_default();
    let turbo = name.contains("turbo")
        || arch_meta.contains("turbo")
        || meta("modelspec.title").is_some_and(|t| t.contains("turbo"));
    let (prediction, prediction_reason) = if let Some(p) = prediction {
        (p, "chosen by the user")
    } else if h.has("v_pred") {
        (Prediction::V, "the file's v_pred marker")
    } else if let Some(p) = meta("modelspec.prediction_type").as_deref().and_then(Prediction::parse) {
        (p, "the file's modelspec.prediction_type")
    } else if arch_meta.ends_with("-v") || arch_meta.contains("-v-") {
        (Prediction::V, "the file's modelspec.architecture")
    } else if arch == Arch::Sd2 && !arch_meta.is_empty() {
        (Prediction::Epsilon, "the file's modelspec.architecture")
    } else if arch == Arch::Sd2 && turbo {
        (Prediction::Epsilon, "SD-Turbo")
    } else if arch == Arch::Sd2 && (name.contains("512") || name.contains("base")) {
        (Prediction::Epsilon, "the file name (512/base)")
    } else if arch == Arch::Sd2 {
        (
            Prediction::V,
            "the SD 2.x default (768 v-prediction); --prediction epsilon for a 512-base model",
        )
    } else {
        (Prediction::Epsilon, "the family default")
    };
    let vae_prefix = ["first_stage_model.", "vae."]
        .into_iter()
        .find(|p| h.has(&format!("{p}decoder.conv_in.weight")));
    Ok(Detected {
        arch,
        turbo,
        prediction,
        prediction_reason,
        text,
        vae_prefix,
    })
}

/// Why a file with no SD UNet cannot be a model, as specifically as its names allow.
fn not_a_checkpoint(h: &Header) -> String {
    let any = |s: &str| h.names().any(|n| n.contains(s));
    let starts = |s: &str| h.names().any(|n| n.starts_with(s));
    if h.tensors.is_empty() {
        "holds no tensors; not a model checkpoint".into()
    } else if any("joint_blocks.") {
        "a Stable Diffusion 3 checkpoint; Lantern runs SD 1.x, 2.x and SDXL".into()
    } else if any("double_blocks.") || any("single_blocks.") {
        "a Flux checkpoint; Lantern runs SD 1.x, 2.x and SDXL".into()
    } else if starts("lora_") || any(".lora_") || any("lora_down") || any("lora_A") {
        "a LoRA, not a model; put it in the data folder's loras/ and write <lora:NAME:1> in the prompt".into()
    } else if starts("encoder.down.")
        || starts("decoder.up.")
        || starts("decoder.up_blocks.")
        || starts("first_stage_model.decoder.")
    {
        "a VAE, not a model; choose it as the VAE (--vae) of a model".into()
    } else if starts("down_blocks.") && starts("conv_in.") {
        "a diffusers UNet file, not a whole checkpoint; choose its model folder instead".into()
    } else if starts("emb_params") || starts("string_to_param") || starts("clip_l") {
        "a textual-inversion embedding, not a model".into()
    } else if starts("text_model.") || starts("cond_stage_model.") {
        "a text encoder alone, not a model checkpoint".into()
    } else {
        "not a Stable Diffusion checkpoint of a known family (no model.diffusion_model.* UNet); Lantern runs SD 1.x, 2.x and SDXL".into()
    }
}
