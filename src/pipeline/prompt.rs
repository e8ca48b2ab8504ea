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
    Ok(encode_prompts(model, &[text])?.pop().expect("one prompt in, one out"))
}

/// Encodes several prompts in one batch per text encoder (a prompt and its negative share
/// every pass, which halves the fixed cost of each layer).
pub fn encode_prompts(model: &LoadedModel, texts: &[&str]) -> Result<Vec<PromptEmbeddings>> {
    let n = texts.len();
    let mut contexts: Vec<Vec<Tensor>> = vec![Vec::new(); n];
    let mut pooled: Vec<Option<Tensor>> = vec![None; n];
    for encoder in &model.text_encoders {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| encoder.tokenizer.encode_for_model(t)).collect();
        let out = encoder.model.forward(&ids)?;
        for i in 0..n {
            let row = |t: &Tensor| -> Result<Tensor> { Ok(t.narrow(0, i, 1)?) };
            match model.kind() {
                PipelineKind::StableDiffusion => contexts[i].push(row(&out.last_hidden_state)?),
                PipelineKind::StableDiffusionXl => {
                    contexts[i].push(row(&out.penultimate_hidden_state)?);
                    if let Some(embeds) = &out.text_embeds {
                        pooled[i] = Some(row(embeds)?);
                    }
                }
            }
        }
    }
    contexts
        .into_iter()
        .zip(pooled)
        .map(|(mut parts, pooled)| {
            let context = if parts.len() == 1 {
                parts.pop().expect("one")
            } else {
                Tensor::cat(&parts, 2)?
            };
            Ok(PromptEmbeddings { context, pooled })
        })
        .collect()
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
