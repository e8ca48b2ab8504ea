//! Turning a prompt into the embeddings the UNet attends to, the way diffusers' SD and SDXL
//! pipelines do (`encode_prompt`).

use candle_core::Tensor;

use crate::error::Result;
use crate::model::{LoadedModel, PipelineKind};

/// A prompt's conditioning for one image.
#[derive(Clone, Debug)]
pub struct PromptEmbeddings {
    /// [1, 77, context_dim]
    pub context: Tensor,
    /// SDXL: [1, projection_dim], the second encoder's pooled, projected output.
    pub pooled: Option<Tensor>,
}

impl PromptEmbeddings {
    /// SDXL's "zeros for an empty negative prompt" (`force_zeros_for_empty_prompt`).
    pub fn zeros_like(other: &PromptEmbeddings) -> Result<PromptEmbeddings> {
        Ok(PromptEmbeddings {
            context: other.context.zeros_like()?,
            pooled: other.pooled.as_ref().map(Tensor::zeros_like).transpose()?,
        })
    }
}

/// Encodes `text` with every text encoder of the model.
///
/// SD 1.x/2.x use the last hidden state after the final layer norm. SDXL concatenates each
/// encoder's second-to-last hidden state and takes the pooled output of the last one.
pub fn encode_prompt(model: &LoadedModel, text: &str) -> Result<PromptEmbeddings> {
    let mut contexts = Vec::with_capacity(model.text_encoders.len());
    let mut pooled = None;
    for encoder in &model.text_encoders {
        let ids = encoder.tokenizer.encode_for_model(text);
        let out = encoder.model.forward(&[ids])?;
        match model.kind() {
            PipelineKind::StableDiffusion => contexts.push(out.last_hidden_state),
            PipelineKind::StableDiffusionXl => {
                contexts.push(out.penultimate_hidden_state);
                if out.text_embeds.is_some() {
                    pooled = out.text_embeds;
                }
            }
        }
    }
    let context = if contexts.len() == 1 {
        contexts.pop().expect("one")
    } else {
        Tensor::cat(&contexts, 2)?
    };
    Ok(PromptEmbeddings { context, pooled })
}

/// How many of the prompt's tokens the encoders will see (CLIP keeps 75 content tokens).
pub fn token_usage(model: &LoadedModel, text: &str) -> (usize, usize) {
    let used = model
        .text_encoders
        .first()
        .map(|e| e.tokenizer.count_tokens(text))
        .unwrap_or(0);
    (used, 75)
}
