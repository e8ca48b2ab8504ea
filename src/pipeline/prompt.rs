//! Turning a prompt into the embeddings the UNet attends to: the way diffusers' SD and SDXL
//! pipelines do (`encode_prompt`, plain syntax), or the way AUTOMATIC1111 does (A1111 syntax:
//! chunks, emphasis, clip skip — [`encode_prompt_a1111`]).

use candle_core::{D, DType, Tensor};

use crate::error::{Error, Result};
use crate::model::clip::TokenFix;
use crate::model::embedding::TextualInversion;
use crate::model::{LoadedModel, PipelineKind};
use crate::text::PromptSyntax;
use crate::text::prompt::{CHUNK_TOKENS, Chunk, MAX_CHUNKS, chunk_prompt_with, empty_chunk, plain_chunk};

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

/// Encodes a prompt in the given syntax with A1111's clip skip (1 = the usual layer).
///
/// Plain syntax at clip skip 1 is exactly [`encode_prompt`] (diffusers' behaviour); at a
/// larger clip skip it takes the same layer as the A1111 syntax does.
pub fn encode_prompt_with(
    model: &LoadedModel,
    text: &str,
    syntax: PromptSyntax,
    clip_skip: u32,
    inversions: &[TextualInversion],
) -> Result<PromptEmbeddings> {
    match syntax {
        PromptSyntax::Plain if clip_skip <= 1 && inversions.is_empty() => encode_prompt(model, text),
        PromptSyntax::Plain => encode_chunks(model, clip_skip, inversions, |encoder, tokenizer| {
            let tokens = super::embeddings::tokens_for(model, encoder, inversions);
            Ok(vec![plain_chunk(tokenizer, text, &tokens)])
        }),
        PromptSyntax::A1111 => encode_prompt_a1111(model, text, clip_skip, inversions),
    }
}

/// A1111's conditioning for one prompt (`FrozenCLIPEmbedderWithCustomWords.forward`): the
/// prompt in 75-token chunks per tokenizer, each chunk encoded alone, emphasis "Original"
/// (each token's vector times its weight, then the whole chunk rescaled so its mean is the
/// unweighted chunk's mean), chunks concatenated along the token axis.
///
/// The layer: SD 1.x/2.x take the hidden state `clip_skip` layers from the end through the
/// final layer norm (A1111's `CLIP_stop_at_last_layers`; A1111 itself ignores clip skip for
/// SD 2.x, Forge applies it like this). SDXL takes, on both encoders, the hidden state
/// `max(clip_skip, 2)` layers from the end without the final norm (Forge's rule; A1111 by
/// default always takes the penultimate one), and the pooled output of the second encoder's
/// first chunk. When SDXL's two tokenizers give different chunk counts (they differ on `!`),
/// the shorter list is padded with empty chunks, as A1111 pads a batch.
pub fn encode_prompt_a1111(
    model: &LoadedModel,
    text: &str,
    clip_skip: u32,
    inversions: &[TextualInversion],
) -> Result<PromptEmbeddings> {
    encode_chunks(model, clip_skip, inversions, |encoder, tokenizer| {
        let tokens = super::embeddings::tokens_for(model, encoder, inversions);
        let chunked = chunk_prompt_with(tokenizer, text, &tokens)?;
        if chunked.chunks.len() > MAX_CHUNKS {
            return Err(Error::invalid(format!(
                "the prompt needs {} chunks of {CHUNK_TOKENS} tokens; Lantern allows at most {MAX_CHUNKS} ({} tokens)",
                chunked.chunks.len(),
                MAX_CHUNKS * CHUNK_TOKENS
            )));
        }
        Ok(chunked.chunks)
    })
}

/// The hidden state the pipeline takes: (layers from the end, through the final norm).
fn layer_for(model: &LoadedModel, clip_skip: u32) -> (usize, bool) {
    let skip = clip_skip.max(1) as usize;
    match model.kind() {
        PipelineKind::StableDiffusion => (skip, true),
        PipelineKind::StableDiffusionXl => (skip.max(2), false),
    }
}

/// Checks a clip skip against every text encoder's depth; one line naming the limit.
pub fn check_clip_skip(model: &LoadedModel, clip_skip: u32) -> Result<()> {
    let (skip, _) = layer_for(model, clip_skip);
    let depth = model.text_encoders.iter().map(|e| e.model.depth()).min().unwrap_or(0);
    if skip > depth {
        return Err(Error::invalid(format!(
            "clip skip {clip_skip} is beyond this model's text encoder depth: it allows 1 to {depth}"
        )));
    }
    Ok(())
}

/// Encodes the chunks `chunks_for` gives for each tokenizer (see [`encode_prompt_a1111`]).
fn encode_chunks(
    model: &LoadedModel,
    clip_skip: u32,
    inversions: &[TextualInversion],
    chunks_for: impl Fn(usize, &crate::text::ClipTokenizer) -> Result<Vec<Chunk>>,
) -> Result<PromptEmbeddings> {
    check_clip_skip(model, clip_skip)?;
    let (skip, final_norm) = layer_for(model, clip_skip);
    let mut per_encoder: Vec<Vec<Chunk>> = model
        .text_encoders
        .iter()
        .enumerate()
        .map(|(i, e)| chunks_for(i, &e.tokenizer))
        .collect::<Result<_>>()?;
    let most = per_encoder.iter().map(Vec::len).max().unwrap_or(0);
    for (chunks, encoder) in per_encoder.iter_mut().zip(&model.text_encoders) {
        chunks.resize_with(most, || empty_chunk(&encoder.tokenizer));
    }
    let mut contexts = Vec::new();
    let mut pooled = None;
    for (index, (chunks, encoder)) in per_encoder.iter().zip(&model.text_encoders).enumerate() {
        if let Some(w) = chunks.iter().flat_map(|c| &c.weights).find(|w| !w.is_finite()) {
            return Err(Error::invalid(format!(
                "a prompt weight comes to {w}, too large to use (deeply nested brackets or a huge `(word:N)`)"
            )));
        }
        let ids: Vec<Vec<u32>> = chunks.iter().map(|c| c.ids.clone()).collect();
        let fixes: Vec<TokenFix> = chunks
            .iter()
            .enumerate()
            .flat_map(|(row, c)| {
                c.fixes.iter().map(move |&(position, which)| TokenFix {
                    row,
                    position,
                    vectors: inversions[which].vectors[index].clone(),
                })
            })
            .collect();
        let out = encoder.model.forward_hidden_fixed(&ids, &fixes, skip, final_norm)?;
        let z = emphasis_original(&out.hidden, chunks)?;
        let (n, seq, dim) = z.dims3()?;
        contexts.push(z.reshape((1, n * seq, dim))?);
        if let Some(embeds) = &out.text_embeds {
            pooled = Some(embeds.narrow(0, 0, 1)?);
        }
    }
    let context = if contexts.len() == 1 {
        contexts.pop().expect("one")
    } else {
        Tensor::cat(&contexts, 2)?
    };
    Ok(PromptEmbeddings {
        context,
        pooled: match model.kind() {
            PipelineKind::StableDiffusion => None,
            PipelineKind::StableDiffusionXl => pooled,
        },
    })
}

/// A1111's emphasis "Original", per chunk (one chunk per row of `z`): `z · w`, then times
/// `mean(z) / mean(z · w)`, both means over the whole chunk (every token, every channel).
/// Chunks whose weights are all 1 are left as they are (the result would be identical).
fn emphasis_original(z: &Tensor, chunks: &[Chunk]) -> Result<Tensor> {
    if chunks.iter().all(Chunk::is_unweighted) {
        return Ok(z.clone());
    }
    let dtype = z.dtype();
    let z = z.to_dtype(DType::F32)?;
    let (n, seq, _) = z.dims3()?;
    let weights: Vec<f32> = chunks.iter().flat_map(|c| c.weights.iter().copied()).collect();
    let w = Tensor::from_vec(weights, (n, seq, 1), z.device())?;
    let weighted = z.broadcast_mul(&w)?;
    // The means in f64: a chunk's mean can be near zero, and the ratio amplifies its error.
    let mean =
        |t: &Tensor| -> Result<Vec<f64>> { Ok(t.to_dtype(DType::F64)?.flatten_from(1)?.mean(D::Minus1)?.to_vec1()?) };
    let ratios: Vec<f32> = mean(&z)?
        .iter()
        .zip(mean(&weighted)?)
        .map(|(original, new)| (original / new) as f32)
        .collect();
    if ratios.iter().any(|r| !r.is_finite()) {
        return Err(Error::invalid(
            "the prompt's weights cancel out (a chunk's weighted mean is zero); change a weight",
        ));
    }
    let ratio = Tensor::from_vec(ratios, (n, 1, 1), z.device())?;
    Ok(weighted.broadcast_mul(&ratio)?.to_dtype(dtype)?)
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
