//! What the window remembers between runs: the last parameters, model and output folder.
//! Stored as JSON in the data folder (window geometry is kept by eframe beside it).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::device::Precision;
use crate::model::single_file::Prediction;
use crate::paths::DataDir;
use crate::recipe::Recipe;

/// How one model is loaded, chosen per model in the window (A1111's VAE dropdown, and the
/// prediction type a single file gives no clue about).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelChoice {
    pub model: PathBuf,
    /// A separate VAE file to decode with; `None`: the model's own.
    pub vae: Option<PathBuf>,
    /// What the UNet predicts; `None`: what the model says (or its file suggests).
    pub prediction: Option<Prediction>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The recipe being edited (its seed is used only while `seed_locked`).
    pub params: Recipe,
    /// Reuse `params.seed` for every generation instead of drawing a new one.
    pub seed_locked: bool,
    pub model: Option<PathBuf>,
    /// Model folders the user opened by hand (listed in the picker).
    pub user_models: Vec<PathBuf>,
    /// `None`: the data folder's `outputs/`.
    pub output_dir: Option<PathBuf>,
    pub precision: Precision,
    pub show_history: bool,
    /// The window's language (`en`, `zh-CN`, a dropped-in catalog's code); `None` follows
    /// the operating system's.
    pub language: Option<String>,
    /// Per-model load choices (only models with a choice made are listed).
    pub model_choices: Vec<ModelChoice>,
    /// Whether the LoRA browser is open beside the parameters.
    pub loras_open: bool,
    /// The weight a click in the LoRA browser writes into the prompt's tag.
    pub lora_weight: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            params: Recipe::default(),
            seed_locked: false,
            model: None,
            user_models: Vec::new(),
            output_dir: None,
            precision: Precision::F32,
            show_history: false,
            language: None,
            model_choices: Vec::new(),
            loras_open: false,
            lora_weight: 1.0,
        }
    }
}

impl Settings {
    /// Reads the settings; a missing or unreadable file gives the defaults (and a log line).
    pub fn load(path: &Path) -> Settings {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_json(&text).unwrap_or_else(|e| {
                tracing::warn!("{}: ignoring unreadable settings ({e})", path.display());
                Settings::default()
            }),
            Err(_) => Settings::default(),
        }
    }

    /// Settings from their JSON. A recipe read from a picture or the history that predates
    /// the prompt syntax and noise source meant plain text and Lantern's noise, so `Recipe`
    /// reads missing fields that way; but the window's settings are the next picture's, and
    /// those follow today's defaults (A1111's syntax and noise), or a pasted A1111 prompt
    /// would still be read as plain text after an upgrade.
    fn from_json(text: &str) -> serde_json::Result<Settings> {
        let mut value: serde_json::Value = serde_json::from_str(text)?;
        if let Some(params) = value.get_mut("params").and_then(|p| p.as_object_mut()) {
            let today = Recipe::default();
            params
                .entry("prompt_syntax")
                .or_insert_with(|| serde_json::json!(today.prompt_syntax));
            params.entry("rng").or_insert_with(|| serde_json::json!(today.rng));
        }
        serde_json::from_value(value)
    }

    /// Writes atomically so a crash mid-write never leaves half a file.
    pub fn save(&self, path: &Path) -> crate::Result<()> {
        let dir = crate::output::atomic::parent_dir(path);
        std::fs::create_dir_all(&dir).map_err(|e| crate::Error::io(&dir, e))?;
        let text = serde_json::to_string_pretty(self).map_err(|e| crate::Error::invalid(e.to_string()))?;
        crate::output::atomic::write_atomic(path, text.as_bytes(), crate::output::atomic::Existing::Replace)
    }

    /// The load choices for `model` (the defaults when none were made).
    pub fn choice_for(&self, model: &Path) -> ModelChoice {
        self.model_choices
            .iter()
            .find(|c| c.model == model)
            .cloned()
            .unwrap_or_else(|| ModelChoice {
                model: model.to_path_buf(),
                ..ModelChoice::default()
            })
    }

    /// Remembers `choice` for its model; a choice of all defaults is forgotten.
    pub fn set_choice(&mut self, choice: ModelChoice) {
        self.model_choices.retain(|c| c.model != choice.model);
        if choice.vae.is_some() || choice.prediction.is_some() {
            self.model_choices.push(choice);
        }
    }

    /// Where finished images go: the chosen folder, else `outputs/` in the data folder.
    pub fn output_dir(&self, data: &DataDir) -> PathBuf {
        self.output_dir.clone().unwrap_or_else(|| data.outputs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedulers::SamplerKind;

    #[test]
    fn settings_from_before_the_prompt_syntax_follow_todays_defaults() {
        let old = r#"{"params": {"prompt": "(fox:1.2)", "steps": 30, "batch": 2}, "seed_locked": true}"#;
        let s = Settings::from_json(old).unwrap();
        assert_eq!(s.params.prompt, "(fox:1.2)");
        assert_eq!((s.params.steps, s.params.batch_size), (30, 2));
        assert_eq!(s.params.prompt_syntax, crate::recipe::PromptSyntax::A1111);
        assert_eq!(s.params.rng, crate::recipe::NoiseKind::Gpu);
        // A choice once made is kept.
        let chosen = r#"{"params": {"prompt_syntax": "plain", "rng": "lantern"}}"#;
        let s = Settings::from_json(chosen).unwrap();
        assert_eq!(s.params.prompt_syntax, crate::recipe::PromptSyntax::Plain);
        assert_eq!(s.params.rng, crate::recipe::NoiseKind::Lantern);
    }

    #[test]
    fn round_trips_and_tolerates_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let mut s = Settings::default();
        s.params.prompt = "一只狐狸 🦊".into();
        s.params.sampler = SamplerKind::DpmPp2mKarras;
        s.model = Some("/models/x".into());
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path), s);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(Settings::load(&path), Settings::default());
    }
}
