//! CLIP's text transformer (transformers' `CLIPTextModel` / `CLIPTextModelWithProjection`),
//! built from the component's `config.json`.

use std::path::Path;

use candle_core::{DType, Device, IndexOp, Tensor};

use super::config::ConfigFile;
use super::cpu;
use super::layers::{Activation, LayerNorm, Linear, attention};
use super::weights::Weights;
use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    pub projection_dim: Option<usize>,
    /// transformers pools at `argmax(ids)` when this is the legacy value 2, else at the first
    /// position holding this id.
    pub eos_token_id: usize,
}

impl ClipTextConfig {
    pub fn read(path: &Path, with_projection: bool) -> Result<ClipTextConfig> {
        let c = ConfigFile::read(path)?;
        // Full CLIP configs nest the text part.
        let c = match c.raw("text_config") {
            Some(inner) if inner.is_object() => ConfigFile::from_value(path, inner.clone()),
            _ => c,
        };
        Self::from_config(&c, with_projection)
    }

    /// From a parsed config (a file's, or one built from a single-file checkpoint's shapes).
    pub fn from_config(c: &ConfigFile, with_projection: bool) -> Result<ClipTextConfig> {
        let act_name = c.str_or("hidden_act", "quick_gelu")?;
        let hidden_act = Activation::parse(act_name).ok_or_else(|| {
            c.error(
                "hidden_act",
                format!("activation `{act_name}` is not supported (quick_gelu or gelu)"),
            )
        })?;
        let hidden_size = c.usize_or("hidden_size", 512)?;
        let num_attention_heads = c.usize_or("num_attention_heads", 8)?;
        if num_attention_heads == 0 || hidden_size % num_attention_heads != 0 {
            return Err(c.error(
                "num_attention_heads",
                format!("{num_attention_heads} does not divide hidden_size {hidden_size}"),
            ));
        }
        let projection_dim = if with_projection {
            Some(c.usize_or("projection_dim", 512)?)
        } else {
            None
        };
        Ok(ClipTextConfig {
            vocab_size: c.usize_or("vocab_size", 49408)?,
            hidden_size,
            intermediate_size: c.usize_or("intermediate_size", 2048)?,
            num_hidden_layers: c.usize_or("num_hidden_layers", 12)?,
            num_attention_heads,
            max_position_embeddings: c.usize_or("max_position_embeddings", 77)?,
            hidden_act,
            layer_norm_eps: c.f64_or("layer_norm_eps", 1e-5)?,
            projection_dim,
            eos_token_id: c.usize_or("eos_token_id", 49407)?,
        })
    }
}

struct EncoderLayer {
    layer_norm1: LayerNorm,
    /// The query, key and value projections as one [3·d, d] product: with 77-token prompts
    /// the rows are few, and one wide product runs far closer to the machine's peak than three
    /// narrow ones.
    qkv_proj: Linear,
    out_proj: Linear,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
    act: Activation,
}

impl EncoderLayer {
    fn load(w: &Weights, c: &ClipTextConfig) -> Result<EncoderLayer> {
        let d = c.hidden_size;
        let attn = w.pp("self_attn");
        Ok(EncoderLayer {
            layer_norm1: LayerNorm::load(&w.pp("layer_norm1"), d, c.layer_norm_eps)?,
            qkv_proj: Linear::load_fused(&attn, &["q_proj", "k_proj", "v_proj"], d, d)?,
            out_proj: Linear::load(&attn.pp("out_proj"), d, d, true)?,
            layer_norm2: LayerNorm::load(&w.pp("layer_norm2"), d, c.layer_norm_eps)?,
            fc1: Linear::load(&w.pp("mlp").pp("fc1"), d, c.intermediate_size, true)?,
            fc2: Linear::load(&w.pp("mlp").pp("fc2"), c.intermediate_size, d, true)?,
            heads: c.num_attention_heads,
            act: c.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor, causal_mask: &Tensor) -> Result<Tensor> {
        let (b, seq, d) = x.dims3()?;
        let head_dim = d / self.heads;
        let scale = (head_dim as f64).powf(-0.5);
        let h = self.layer_norm1.forward(x)?;
        let qkv = self.qkv_proj.forward(&h)?;
        let (q, k, v) = (qkv.narrow(2, 0, d)?, qkv.narrow(2, d, d)?, qkv.narrow(2, 2 * d, d)?);
        if cpu::is_cpu_f32(&q) {
            let a = cpu::attention::attention_masked(&q, &k, &v, self.heads, scale as f32, true)?;
            let x = self.out_proj.forward_residual(&a, x)?;
            let h = self.fc1.forward(&self.layer_norm2.forward(&x)?)?;
            let h = cpu::matmul::activation(&h, self.act == Activation::QuickGelu)?;
            return self.fc2.forward_residual(&h, &x);
        }
        let split = |t: Tensor| -> Result<Tensor> {
            Ok(t.contiguous()?
                .reshape((b, seq, self.heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let a = attention(&split(q)?, &split(k)?, &split(v)?, scale, false, Some(causal_mask))?;
        let a = a.transpose(1, 2)?.reshape((b, seq, d))?;
        let x = self.out_proj.forward_residual(&a, x)?;
        let h = self.layer_norm2.forward(&x)?;
        let h = self.act.forward(&self.fc1.forward(&h)?)?;
        self.fc2.forward_residual(&h, &x)
    }
}

/// What the pipelines take from a text encoder.
pub struct TextEncoderOutput {
    /// The final layer's output after the final layer norm (SD 1.x / 2.x context).
    pub last_hidden_state: Tensor,
    /// The output of the second-to-last layer, before any norm (SDXL context).
    pub penultimate_hidden_state: Tensor,
    /// The projected pooled output (`text_embeds`), for encoders with a projection.
    pub text_embeds: Option<Tensor>,
}

/// Vectors that stand in for the token embeddings of `row` from `position` on (cut at the
/// row's end): a textual-inversion embedding placed in the prompt.
#[derive(Clone, Debug)]
pub struct TokenFix {
    pub row: usize,
    pub position: usize,
    /// [n, hidden]
    pub vectors: Tensor,
}

impl TokenFix {
    fn apply(&self, tokens: &Tensor) -> Result<Tensor> {
        let (batch, seq, hidden) = tokens.dims3()?;
        let (n, width) = self.vectors.dims2()?;
        if width != hidden || self.row >= batch || self.position >= seq {
            return Err(Error::invalid(format!(
                "an embedding of {n}×{width} cannot go at token {} of a {seq}×{hidden} prompt",
                self.position
            )));
        }
        let n = n.min(seq - self.position);
        let vectors = self
            .vectors
            .narrow(0, 0, n)?
            .to_device(tokens.device())?
            .to_dtype(tokens.dtype())?;
        let row = tokens.get(self.row)?;
        let mut parts = vec![row.narrow(0, 0, self.position)?, vectors];
        if self.position + n < seq {
            parts.push(row.narrow(0, self.position + n, seq - self.position - n)?);
        }
        let row = Tensor::cat(&parts, 0)?.unsqueeze(0)?;
        let mut rows = Vec::with_capacity(batch);
        for r in 0..batch {
            rows.push(if r == self.row {
                row.clone()
            } else {
                tokens.narrow(0, r, 1)?
            });
        }
        Ok(Tensor::cat(&rows, 0)?)
    }
}

/// A chosen hidden state and the pooled projection ([`ClipTextModel::forward_hidden`]).
pub struct HiddenOutput {
    /// [batch, seq, hidden]
    pub hidden: Tensor,
    /// The projected pooled output (`text_embeds`), for encoders with a projection.
    pub text_embeds: Option<Tensor>,
}

pub struct ClipTextModel {
    token_embedding: Tensor,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    final_layer_norm: LayerNorm,
    text_projection: Option<Linear>,
    config: ClipTextConfig,
    device: Device,
    dtype: DType,
}

impl ClipTextModel {
    pub fn load(weights: &Weights, config: ClipTextConfig) -> Result<ClipTextModel> {
        // Real checkpoints name weights `text_model.*`; transformers 5 saves them bare.
        let w = if weights.contains("text_model.embeddings.token_embedding.weight") {
            weights.pp("text_model")
        } else {
            weights.clone()
        };
        let d = config.hidden_size;
        let emb = w.pp("embeddings");
        let token_embedding = emb.get("token_embedding.weight", (config.vocab_size, d))?;
        let position_embedding = emb.get("position_embedding.weight", (config.max_position_embeddings, d))?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| EncoderLayer::load(&w.pp("encoder.layers").pp(i), &config))
            .collect::<Result<Vec<_>>>()?;
        let final_layer_norm = LayerNorm::load(&w.pp("final_layer_norm"), d, config.layer_norm_eps)?;
        let text_projection = match config.projection_dim {
            Some(p) => Some(Linear::load(&weights.pp("text_projection"), d, p, false)?),
            None => None,
        };
        Ok(ClipTextModel {
            token_embedding,
            position_embedding,
            layers,
            final_layer_norm,
            text_projection,
            device: weights.device().clone(),
            dtype: weights.compute_dtype(),
            config,
        })
    }

    pub fn config(&self) -> &ClipTextConfig {
        &self.config
    }

    /// Encodes one or more id sequences of equal length (77 for SD).
    pub fn forward(&self, ids: &[Vec<u32>]) -> Result<TextEncoderOutput> {
        let embedded = self.embed(ids)?;
        let seq = embedded.dim(1)?;
        let mut x = embedded.clone();
        let mask = causal_mask(seq, self.dtype, &self.device)?;
        let n = self.layers.len();
        let mut penultimate = None;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, &mask)?;
            if i + 2 == n {
                penultimate = Some(x.clone());
            }
        }
        let last = self.final_layer_norm.forward(&x)?;
        // With a single layer, the "penultimate" hidden state is the embeddings themselves.
        let penultimate_hidden_state = match penultimate {
            Some(p) => p,
            None if n >= 2 => unreachable!("set in the loop"),
            None => embedded,
        };
        let text_embeds = match &self.text_projection {
            Some(proj) => {
                let pooled = self.pool(&last, ids)?;
                Some(proj.forward(&pooled)?)
            }
            None => None,
        };
        Ok(TextEncoderOutput {
            last_hidden_state: last,
            penultimate_hidden_state,
            text_embeds,
        })
    }

    /// Encodes equal-length id rows and returns the hidden state `skip` layers from the end
    /// (transformers' `hidden_states[-skip]`: 1 is the last layer's output, 2 the one before),
    /// through the final layer norm when `final_norm` (A1111's clip skip for SD 1.x), and the
    /// projected pooled output of the full model, whatever `skip` is, for encoders with a
    /// projection. `skip` runs from 1 to the number of layers.
    pub fn forward_hidden(&self, ids: &[Vec<u32>], skip: usize, final_norm: bool) -> Result<HiddenOutput> {
        self.forward_hidden_fixed(ids, &[], skip, final_norm)
    }

    /// [`Self::forward_hidden`] with textual-inversion vectors in place of some token
    /// embeddings (before the position embeddings are added, as A1111's
    /// `EmbeddingsWithFixes` and diffusers' resized embedding table both do).
    pub fn forward_hidden_fixed(
        &self,
        ids: &[Vec<u32>],
        fixes: &[TokenFix],
        skip: usize,
        final_norm: bool,
    ) -> Result<HiddenOutput> {
        let n = self.layers.len();
        if skip == 0 || skip > n {
            return Err(Error::invalid(format!(
                "clip skip {skip} is beyond this text encoder's depth ({n} layers)"
            )));
        }
        let mut x = self.embed_fixed(ids, fixes)?;
        let seq = x.dim(1)?;
        let mask = causal_mask(seq, self.dtype, &self.device)?;
        let keep_after = n + 1 - skip;
        let run_all = self.text_projection.is_some();
        let mut kept = None;
        for (i, layer) in self.layers.iter().enumerate() {
            if i >= keep_after && !run_all {
                break;
            }
            x = layer.forward(&x, &mask)?;
            if i + 1 == keep_after {
                kept = Some(x.clone());
            }
        }
        let kept = kept.expect("1 <= keep_after <= n");
        let hidden = if final_norm {
            self.final_layer_norm.forward(&kept)?
        } else {
            kept
        };
        let text_embeds = match &self.text_projection {
            Some(proj) => {
                let last = self.final_layer_norm.forward(&x)?;
                Some(proj.forward(&self.pool(&last, ids)?)?)
            }
            None => None,
        };
        Ok(HiddenOutput { hidden, text_embeds })
    }

    /// Token plus position embeddings of checked id rows.
    fn embed(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        self.embed_fixed(ids, &[])
    }

    /// [`Self::embed`] with `fixes` written over the token embeddings first.
    fn embed_fixed(&self, ids: &[Vec<u32>], fixes: &[TokenFix]) -> Result<Tensor> {
        let batch = ids.len();
        let seq = ids.first().map(Vec::len).unwrap_or(0);
        if batch == 0 || seq == 0 || seq > self.config.max_position_embeddings || ids.iter().any(|r| r.len() != seq) {
            return Err(Error::invalid(format!(
                "text encoder needs equal-length id rows of at most {} tokens",
                self.config.max_position_embeddings
            )));
        }
        if let Some(bad) = ids.iter().flatten().find(|&&id| id as usize >= self.config.vocab_size) {
            return Err(Error::invalid(format!(
                "token id {bad} is outside the text encoder's vocabulary"
            )));
        }
        let flat: Vec<u32> = ids.iter().flatten().copied().collect();
        let ids_t = Tensor::from_vec(flat, (batch * seq,), &self.device)?;
        let mut tokens = self
            .token_embedding
            .index_select(&ids_t, 0)?
            .to_dtype(self.dtype)?
            .reshape((batch, seq, self.config.hidden_size))?;
        for fix in fixes {
            tokens = fix.apply(&tokens)?;
        }
        let positions = self.position_embedding.narrow(0, 0, seq)?.to_dtype(self.dtype)?;
        Ok(tokens.broadcast_add(&positions)?)
    }

    /// Number of transformer layers (the deepest clip skip).
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// The hidden state at each row's end-of-text position, as transformers picks it.
    fn pool(&self, hidden: &Tensor, ids: &[Vec<u32>]) -> Result<Tensor> {
        let rows = ids
            .iter()
            .enumerate()
            .map(|(b, row)| {
                let pos = if self.config.eos_token_id == 2 {
                    // Legacy configs: argmax of the ids (the first maximum).
                    let max = row.iter().copied().max().unwrap_or(0);
                    row.iter().position(|&t| t == max).unwrap_or(0)
                } else {
                    let eos = self.config.eos_token_id as u32;
                    row.iter().position(|&t| t == eos).unwrap_or(0)
                };
                hidden.i((b, pos))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Tensor::stack(&rows, 0)?)
    }
}

fn causal_mask(seq: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..seq)
        .flat_map(|i| (0..seq).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(mask, (seq, seq), device)?
        .to_dtype(dtype)?
        .unsqueeze(0)?
        .unsqueeze(0)?)
}
