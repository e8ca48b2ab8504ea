//! What a picture remembers about how it was made.

use serde::{Deserialize, Serialize};

use crate::schedulers::SamplerKind;

/// Every parameter needed to make the same image again. Written into each PNG as the
/// AUTOMATIC1111 `parameters` text and stored in the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationParams {
    pub prompt: String,
    /// Empty when there is none (the `Negative prompt:` line is then omitted).
    pub negative_prompt: String,
    pub steps: u32,
    pub sampler: SamplerKind,
    /// Classifier-free guidance scale ("CFG scale").
    pub guidance: f64,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    /// The model's display name (folder or repo name).
    pub model: String,
    /// A short hash identifying the model's weights, when known.
    pub model_hash: Option<String>,
    /// Position in its batch (0-based) and the batch size, when part of a batch.
    pub batch_index: u32,
    pub batch_size: u32,
    /// Fields we read from other tools' PNGs but do not interpret, kept in order.
    pub extra: Vec<(String, String)>,
}

impl Default for GenerationParams {
    fn default() -> Self {
        GenerationParams {
            prompt: String::new(),
            negative_prompt: String::new(),
            steps: 20,
            sampler: SamplerKind::Default,
            guidance: 7.5,
            seed: 0,
            width: 512,
            height: 512,
            model: String::new(),
            model_hash: None,
            batch_index: 0,
            batch_size: 1,
            extra: Vec::new(),
        }
    }
}
