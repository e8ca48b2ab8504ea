//! What one diffusers folder is: which family, which precision, and whether every component the
//! pipeline needs is actually there. Reads `model_index.json`, a few component configs and the
//! safetensors headers; never a tensor.
//!
//! ## Family rule
//! The architecture comes from `unet/config.json`'s `cross_attention_dim` (the text encoder's
//! width): 768 → SD 1.x (CLIP ViT-L), 1024 → SD 2.x (OpenCLIP ViT-H), 2048 → SDXL (both
//! encoders concatenated). A `StableDiffusionXLPipeline` is always SDXL. Folders with other widths
//! (tiny test pipelines, odd fine-tunes) fall back to the SD 2.x tell-tales, `use_linear_projection`
//! or a `v_prediction` scheduler, else SD 1.x.
//!
//! A model is a *Turbo* (adversarially distilled, 1–4 steps, no CFG) when its repo id or folder
//! name contains "turbo", or when its own scheduler is Euler / Euler-ancestral with
//! `timestep_spacing = "trailing"`: that is exactly how SD-Turbo and SDXL-Turbo ship, while the
//! base SD 1.5 / 2.1 / SDXL repos ship PNDM, DDIM or Euler with "leading" spacing. Turbo on an SDXL
//! UNet is SDXL-Turbo, otherwise SD-Turbo.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::safetensors_header;

/// The UNet architecture, which decides how a folder is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaseArch {
    Sd1,
    Sd2,
    Sdxl,
}

/// What users call the model: the architecture, with distilled Turbo models told apart because
/// they need completely different settings (1–4 steps, guidance 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Sd1,
    Sd2,
    Sdxl,
    SdTurbo,
    SdxlTurbo,
}

impl Family {
    pub fn label(self) -> &'static str {
        match self {
            Family::Sd1 => "SD 1.x",
            Family::Sd2 => "SD 2.x",
            Family::Sdxl => "SDXL",
            Family::SdTurbo => "SD-Turbo",
            Family::SdxlTurbo => "SDXL-Turbo",
        }
    }

    pub fn is_turbo(self) -> bool {
        matches!(self, Family::SdTurbo | Family::SdxlTurbo)
    }

    /// The architecture the family's models have (SD-Turbo is an SD 2.1 distillation).
    pub fn base(self) -> BaseArch {
        match self {
            Family::Sd1 => BaseArch::Sd1,
            Family::Sd2 | Family::SdTurbo => BaseArch::Sd2,
            Family::Sdxl | Family::SdxlTurbo => BaseArch::Sdxl,
        }
    }

    /// The component folders a pipeline of this family needs.
    pub fn required_components(self) -> &'static [&'static str] {
        match self {
            Family::Sdxl | Family::SdxlTurbo => &[
                "scheduler",
                "text_encoder",
                "text_encoder_2",
                "tokenizer",
                "tokenizer_2",
                "unet",
                "vae",
            ],
            _ => &["scheduler", "text_encoder", "tokenizer", "unet", "vae"],
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The floating-point type of the weights a loader would use by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Fp16,
    Bf16,
    /// Components stored in different types (e.g. an fp32 text encoder next to an fp16 UNet).
    Mixed,
    /// No readable weights.
    Unknown,
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
            Precision::Mixed => "mixed",
            Precision::Unknown => "unknown",
        })
    }
}

/// Pipelines Lantern can run.
pub const SUPPORTED_PIPELINES: [&str; 6] = [
    "StableDiffusionPipeline",
    "StableDiffusionXLPipeline",
    "StableDiffusionInpaintPipeline",
    "StableDiffusionImg2ImgPipeline",
    "StableDiffusionXLInpaintPipeline",
    "StableDiffusionXLImg2ImgPipeline",
];

/// model_index.json entries that are not needed to generate (the safety checker is never used).
const OPTIONAL_COMPONENTS: [&str; 3] = ["safety_checker", "feature_extractor", "image_encoder"];

/// The result of looking at one folder that has a supported `model_index.json`.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub pipeline: String,
    pub base: BaseArch,
    pub family: Family,
    pub precision: Precision,
    /// `prediction_type` from the scheduler config (epsilon when absent, like diffusers).
    pub prediction_type: String,
    /// The weight files a default load would read, one or more per component.
    pub weights: Vec<PathBuf>,
    /// Why the folder cannot be loaded as it is; empty when complete.
    pub problems: Vec<String>,
}

/// Looks at `dir`. `Ok(None)` when it is not a model folder Lantern supports (no
/// `model_index.json`, or another pipeline). `name_hint` is the repo id or folder name, used for
/// the Turbo rule.
pub fn inspect(dir: &Path, name_hint: &str) -> Option<Inspection> {
    let index_path = dir.join("model_index.json");
    let index = read_json(&index_path)?;
    let pipeline = index.get("_class_name")?.as_str()?.to_owned();
    if !SUPPORTED_PIPELINES.contains(&pipeline.as_str()) {
        tracing::debug!(dir = %dir.display(), pipeline, "skipping unsupported pipeline");
        return None;
    }
    let is_xl = pipeline.starts_with("StableDiffusionXL");

    let unet_config = read_json(&dir.join("unet").join("config.json"));
    let scheduler_config = read_json(&dir.join("scheduler").join("scheduler_config.json"));
    let prediction_type = scheduler_config
        .as_ref()
        .and_then(|c| c.get("prediction_type")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "epsilon".to_owned());
    let base = base_arch(is_xl, unet_config.as_ref(), &prediction_type);
    let family = family(base, name_hint, scheduler_config.as_ref());

    let mut problems = Vec::new();
    let mut weights = Vec::new();
    for (component, class) in components(&index, family) {
        check_component(dir, &component, &class, &mut weights, &mut problems);
    }

    let mut dtypes = BTreeSet::new();
    for file in &weights {
        match safetensors_header::dtypes(file) {
            Ok(found) => dtypes.extend(found),
            Err(e) => problems.push(e.to_string()),
        }
    }

    Some(Inspection {
        pipeline,
        base,
        family,
        precision: precision(&dtypes),
        prediction_type,
        weights,
        problems,
    })
}

fn read_json(path: &Path) -> Option<Value> {
    let text = fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(path = %path.display(), "invalid JSON: {e}");
            None
        }
    }
}

fn base_arch(is_xl: bool, unet: Option<&Value>, prediction_type: &str) -> BaseArch {
    if is_xl {
        return BaseArch::Sdxl;
    }
    let cross_attention_dim = unet.and_then(|c| c.get("cross_attention_dim")?.as_u64());
    match cross_attention_dim {
        Some(768) => BaseArch::Sd1,
        Some(1024) => BaseArch::Sd2,
        Some(2048) => BaseArch::Sdxl,
        _ => {
            let linear = unet
                .and_then(|c| c.get("use_linear_projection")?.as_bool())
                .unwrap_or(false);
            if linear || prediction_type == "v_prediction" {
                BaseArch::Sd2
            } else {
                BaseArch::Sd1
            }
        }
    }
}

fn family(base: BaseArch, name_hint: &str, scheduler: Option<&Value>) -> Family {
    let named_turbo = name_hint.to_ascii_lowercase().contains("turbo");
    let trailing_euler = scheduler.is_some_and(|s| {
        let class = s.get("_class_name").and_then(Value::as_str).unwrap_or("");
        let spacing = s.get("timestep_spacing").and_then(Value::as_str).unwrap_or("");
        matches!(class, "EulerDiscreteScheduler" | "EulerAncestralDiscreteScheduler") && spacing == "trailing"
    });
    match (base, named_turbo || trailing_euler) {
        (BaseArch::Sdxl, true) => Family::SdxlTurbo,
        (_, true) => Family::SdTurbo,
        (BaseArch::Sd1, false) => Family::Sd1,
        (BaseArch::Sd2, false) => Family::Sd2,
        (BaseArch::Sdxl, false) => Family::Sdxl,
    }
}

/// (component folder, class name) pairs the pipeline needs: what model_index.json lists, minus
/// the optional ones, plus any the family requires that the index forgot.
fn components(index: &Value, family: Family) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    if let Some(map) = index.as_object() {
        for (key, value) in map {
            if key.starts_with('_') || OPTIONAL_COMPONENTS.contains(&key.as_str()) {
                continue;
            }
            let Some([library, class]) = value.as_array().map(Vec::as_slice) else {
                continue;
            };
            if library.is_null() || class.is_null() {
                continue;
            }
            out.push((key.clone(), class.as_str().unwrap_or("").to_owned()));
        }
    }
    for required in family.required_components() {
        if !out.iter().any(|(name, _)| name == required) {
            out.push(((*required).to_owned(), String::new()));
        }
    }
    out
}

enum ComponentKind {
    Tokenizer,
    Scheduler,
    Weights,
}

fn component_kind(name: &str, class: &str) -> ComponentKind {
    if class.contains("Tokenizer") || name.starts_with("tokenizer") {
        ComponentKind::Tokenizer
    } else if class.ends_with("Scheduler") || name == "scheduler" {
        ComponentKind::Scheduler
    } else {
        ComponentKind::Weights
    }
}

fn check_component(dir: &Path, name: &str, class: &str, weights: &mut Vec<PathBuf>, problems: &mut Vec<String>) {
    let sub = dir.join(name);
    if !sub.is_dir() {
        problems.push(format!("{name}/ is missing"));
        return;
    }
    // `exists()` follows symlinks, so a snapshot link whose blob is gone counts as missing.
    let has = |file: &str| sub.join(file).exists();
    match component_kind(name, class) {
        ComponentKind::Tokenizer => {
            if !(has("tokenizer.json") || (has("vocab.json") && has("merges.txt"))) {
                problems.push(format!(
                    "{name}/ has neither vocab.json + merges.txt nor tokenizer.json"
                ));
            }
        }
        ComponentKind::Scheduler => {
            if !has("scheduler_config.json") {
                problems.push(format!("{name}/scheduler_config.json is missing"));
            }
        }
        ComponentKind::Weights => {
            if !has("config.json") {
                problems.push(format!("{name}/config.json is missing"));
            }
            match pick_weights(&sub) {
                Ok(files) => weights.extend(files),
                Err(problem) => problems.push(format!("{name}/: {problem}")),
            }
        }
    }
}

/// The safetensors files a default load would use: the plain (full-precision) files when
/// present, like diffusers without a `variant`, else the `.fp16` variant. Sharded checkpoints
/// are checked against their index.
fn pick_weights(sub: &Path) -> Result<Vec<PathBuf>, String> {
    let Ok(entries) = fs::read_dir(sub) else {
        return Err("cannot be read".into());
    };
    let mut plain = Vec::new();
    let mut fp16 = Vec::new();
    let mut pickles = false;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.ends_with(".bin") || name.ends_with(".ckpt") {
            pickles = true;
        }
        if name.ends_with(".safetensors.index.json") {
            let shards = shard_files(&path);
            let missing: Vec<_> = shards.iter().filter(|p| !p.exists()).collect();
            if let Some(first) = missing.first() {
                return Err(format!(
                    "shard {} listed in {name} is missing",
                    first.file_name().unwrap_or_default().to_string_lossy()
                ));
            }
            continue;
        }
        if !name.ends_with(".safetensors") {
            continue;
        }
        if !path.exists() {
            return Err(format!("{name} is a broken link (its blob is missing)"));
        }
        if name.contains(".fp16.") || name.contains("-fp16") {
            fp16.push(path);
        } else {
            plain.push(path);
        }
    }
    let mut chosen = if plain.is_empty() { fp16 } else { plain };
    chosen.sort();
    if chosen.is_empty() {
        return Err(if pickles {
            "only PyTorch pickle weights (.bin/.ckpt), which Lantern does not load; need .safetensors".into()
        } else {
            "no .safetensors weights".into()
        });
    }
    Ok(chosen)
}

fn shard_files(index: &Path) -> Vec<PathBuf> {
    let dir = index.parent().unwrap_or(Path::new("."));
    let Some(json) = read_json(index) else {
        return Vec::new();
    };
    let mut names: Vec<String> = json
        .get("weight_map")
        .and_then(Value::as_object)
        .map(|m| m.values().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    names.sort();
    names.dedup();
    names.into_iter().map(|n| dir.join(n)).collect()
}

fn precision(dtypes: &BTreeSet<String>) -> Precision {
    let floats: Vec<&str> = dtypes
        .iter()
        .map(String::as_str)
        .filter(|d| d.starts_with('F') || *d == "BF16")
        .collect();
    match floats.as_slice() {
        [] => Precision::Unknown,
        ["F32"] => Precision::Fp32,
        ["F16"] => Precision::Fp16,
        ["BF16"] => Precision::Bf16,
        _ => Precision::Mixed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cross_attention_width_decides_the_architecture() {
        let unet = |d: u64| json!({ "cross_attention_dim": d });
        assert_eq!(base_arch(false, Some(&unet(768)), "epsilon"), BaseArch::Sd1);
        assert_eq!(base_arch(false, Some(&unet(1024)), "epsilon"), BaseArch::Sd2);
        assert_eq!(base_arch(false, Some(&unet(2048)), "epsilon"), BaseArch::Sdxl);
        assert_eq!(base_arch(true, Some(&unet(32)), "epsilon"), BaseArch::Sdxl);
        // Unknown widths: SD 2.x tell-tales, else SD 1.x.
        let tiny = json!({ "cross_attention_dim": 32, "use_linear_projection": true });
        assert_eq!(base_arch(false, Some(&tiny), "epsilon"), BaseArch::Sd2);
        assert_eq!(base_arch(false, None, "v_prediction"), BaseArch::Sd2);
        assert_eq!(base_arch(false, None, "epsilon"), BaseArch::Sd1);
    }

    #[test]
    fn turbo_from_name_or_trailing_euler() {
        let leading = json!({ "_class_name": "EulerDiscreteScheduler", "timestep_spacing": "leading" });
        let trailing = json!({ "_class_name": "EulerDiscreteScheduler", "timestep_spacing": "trailing" });
        let trailing_a = json!({ "_class_name": "EulerAncestralDiscreteScheduler", "timestep_spacing": "trailing" });
        let ddim_trailing = json!({ "_class_name": "DDIMScheduler", "timestep_spacing": "trailing" });
        assert_eq!(family(BaseArch::Sd2, "stabilityai/sd-turbo", None), Family::SdTurbo);
        assert_eq!(
            family(BaseArch::Sdxl, "My SDXL-TURBO", Some(&leading)),
            Family::SdxlTurbo
        );
        assert_eq!(family(BaseArch::Sd2, "folder", Some(&trailing)), Family::SdTurbo);
        assert_eq!(family(BaseArch::Sdxl, "folder", Some(&trailing_a)), Family::SdxlTurbo);
        assert_eq!(family(BaseArch::Sdxl, "folder", Some(&leading)), Family::Sdxl);
        assert_eq!(family(BaseArch::Sd1, "folder", Some(&ddim_trailing)), Family::Sd1);
    }

    #[test]
    fn precision_ignores_integer_tensors() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(precision(&set(&["F32", "I64"])), Precision::Fp32);
        assert_eq!(precision(&set(&["F16"])), Precision::Fp16);
        assert_eq!(precision(&set(&["BF16"])), Precision::Bf16);
        assert_eq!(precision(&set(&["F16", "F32"])), Precision::Mixed);
        assert_eq!(precision(&set(&[])), Precision::Unknown);
    }
}
