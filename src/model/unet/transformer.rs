//! diffusers' `Transformer2DModel` for continuous inputs: GroupNorm, a projection in, a stack
//! of `BasicTransformerBlock`s (self-attention, cross-attention to the text, GEGLU
//! feed-forward), a projection out, and a residual connection.

use std::sync::Mutex;

use candle_core::{Tensor, TensorId};

use crate::error::Result;
use crate::model::cpu;
use crate::model::layers::{Conv2d, GroupNorm, LayerNorm, Linear, attention};
use crate::model::weights::Weights;

pub struct TransformerConfig {
    pub channels: usize,
    pub heads: usize,
    pub layers: usize,
    pub cross_attention_dim: usize,
    pub groups: usize,
    pub use_linear_projection: bool,
    pub upcast_attention: bool,
}

/// Multi-head attention with separate q/k/v projections (no bias) and an output projection.
pub struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
    upcast: bool,
    /// Cross-attention's K and V of the text, with the id of the text tensor they came from:
    /// a generation passes the same text at every denoising step, so they are computed once.
    text_kv: Mutex<Option<(TensorId, Tensor, Tensor)>>,
}

impl Attention {
    pub fn load(w: &Weights, query_dim: usize, context_dim: usize, heads: usize, upcast: bool) -> Result<Attention> {
        Ok(Attention {
            to_q: Linear::load(&w.pp("to_q"), query_dim, query_dim, false)?,
            to_k: Linear::load(&w.pp("to_k"), context_dim, query_dim, false)?,
            to_v: Linear::load(&w.pp("to_v"), context_dim, query_dim, false)?,
            to_out: Linear::load(&w.pp("to_out.0"), query_dim, query_dim, true)?,
            heads,
            upcast,
            text_kv: Mutex::new(None),
        })
    }

    /// K and V for `context`, reused while the same text tensor comes back.
    fn text_keys_values(&self, context: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut cached = self.text_kv.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, k, v)) = cached.as_ref()
            && *id == context.id()
        {
            return Ok((k.clone(), v.clone()));
        }
        let (k, v) = (self.to_k.forward(context)?, self.to_v.forward(context)?);
        *cached = Some((context.id(), k.clone(), v.clone()));
        Ok((k, v))
    }

    /// `x`: [batch, tokens, dim]; `context`: [batch, context_tokens, context_dim] or `None`
    /// for self-attention.
    /// Attention of `x` to `context` (itself when `None`), plus `residual`.
    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
        let (b, n, dim) = x.dims3()?;
        let head_dim = dim / self.heads;
        let scale = (head_dim as f64).powf(-0.5);
        let q = self.to_q.forward(x)?;
        let (k, v) = match context {
            Some(text) => self.text_keys_values(text)?,
            None => (self.to_k.forward(x)?, self.to_v.forward(x)?),
        };
        if cpu::is_cpu_f32(&q) {
            let out = cpu::attention::attention(&q, &k, &v, self.heads, scale as f32)?;
            return self.to_out.forward_residual(&out, residual);
        }
        let split = |t: Tensor| -> Result<Tensor> {
            let len = t.dim(1)?;
            Ok(t.reshape((b, len, self.heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let out = attention(&split(q)?, &split(k)?, &split(v)?, scale, self.upcast, None)?;
        let out = out.transpose(1, 2)?.reshape((b, n, dim))?;
        self.to_out.forward_residual(&out, residual)
    }
}

/// GELU-gated linear unit feed-forward (`ff.net.0` = GEGLU projection, `ff.net.2` = out).
struct FeedForward {
    proj_in: Linear,
    proj_out: Linear,
}

impl FeedForward {
    fn load(w: &Weights, dim: usize) -> Result<FeedForward> {
        let inner = dim * 4;
        Ok(FeedForward {
            proj_in: Linear::load(&w.pp("net.0.proj"), dim, inner * 2, true)?,
            proj_out: Linear::load(&w.pp("net.2"), inner, dim, true)?,
        })
    }

    /// The feed-forward of `x`, plus `residual`.
    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        if cpu::is_cpu_f32(x) {
            // The projection's bias is added in the GEGLU pass, which reads its output anyway.
            let (w, b) = (self.proj_in.weight(x.dtype())?, self.proj_in.bias(x.dtype())?);
            let h = cpu::matmul::linear(x, &w, None, None)?;
            return self
                .proj_out
                .forward_residual(&cpu::matmul::geglu(&h, b.as_ref())?, residual);
        }
        let h = self.proj_in.forward(x)?;
        let inner = h.dim(2)? / 2;
        let (value, gate) = (h.narrow(2, 0, inner)?, h.narrow(2, inner, inner)?);
        let h = (value * gate.gelu_erf()?)?;
        self.proj_out.forward_residual(&h, residual)
    }
}

struct BasicTransformerBlock {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    ff: FeedForward,
}

impl BasicTransformerBlock {
    fn load(w: &Weights, c: &TransformerConfig) -> Result<BasicTransformerBlock> {
        let d = c.channels;
        Ok(BasicTransformerBlock {
            norm1: LayerNorm::load(&w.pp("norm1"), d, 1e-5)?,
            attn1: Attention::load(&w.pp("attn1"), d, d, c.heads, c.upcast_attention)?,
            norm2: LayerNorm::load(&w.pp("norm2"), d, 1e-5)?,
            attn2: Attention::load(&w.pp("attn2"), d, c.cross_attention_dim, c.heads, c.upcast_attention)?,
            norm3: LayerNorm::load(&w.pp("norm3"), d, 1e-5)?,
            ff: FeedForward::load(&w.pp("ff"), d)?,
        })
    }

    fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let x = self.attn1.forward(&self.norm1.forward(x)?, None, x)?;
        let x = self.attn2.forward(&self.norm2.forward(&x)?, Some(context), &x)?;
        self.ff.forward(&self.norm3.forward(&x)?, &x)
    }
}

enum Projection {
    Conv(Conv2d),
    Linear(Linear),
}

impl Projection {
    /// (weight [out, in], bias [out]): a 1×1 conv and a linear layer are the same product.
    fn matrix(&self, dtype: candle_core::DType) -> Result<(Tensor, Tensor)> {
        Ok(match self {
            Projection::Conv(c) => (c.weight_matrix(dtype)?, c.bias(dtype)?),
            Projection::Linear(l) => (
                l.weight(dtype)?,
                l.bias(dtype)?
                    .ok_or_else(|| crate::error::Error::invalid("projection without bias"))?,
            ),
        })
    }
}

pub struct Transformer2D {
    norm: GroupNorm,
    proj_in: Projection,
    blocks: Vec<BasicTransformerBlock>,
    proj_out: Projection,
}

impl Transformer2D {
    pub fn load(w: &Weights, c: &TransformerConfig) -> Result<Transformer2D> {
        let d = c.channels;
        let (proj_in, proj_out) = if c.use_linear_projection {
            (
                Projection::Linear(Linear::load(&w.pp("proj_in"), d, d, true)?),
                Projection::Linear(Linear::load(&w.pp("proj_out"), d, d, true)?),
            )
        } else {
            (
                Projection::Conv(Conv2d::load(&w.pp("proj_in"), d, d, 1, 1, 0)?),
                Projection::Conv(Conv2d::load(&w.pp("proj_out"), d, d, 1, 1, 0)?),
            )
        };
        let blocks = (0..c.layers)
            .map(|i| BasicTransformerBlock::load(&w.pp("transformer_blocks").pp(i), c))
            .collect::<Result<Vec<_>>>()?;
        Ok(Transformer2D {
            norm: GroupNorm::load(&w.pp("norm"), c.groups, d, 1e-6)?,
            proj_in,
            blocks,
            proj_out,
        })
    }

    pub fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let normed = self.norm.forward(x)?;
        if cpu::is_cpu_f32(&normed) {
            // Layout changes folded into the projections: no transposed copies.
            let (w_in, b_in) = self.proj_in.matrix(normed.dtype())?;
            let mut tokens = cpu::matmul::image_to_tokens(&normed, &w_in, &b_in)?;
            for block in &self.blocks {
                tokens = block.forward(&tokens, context)?;
            }
            let (w_out, b_out) = self.proj_out.matrix(normed.dtype())?;
            return Ok(cpu::matmul::tokens_to_image(&tokens, &w_out, &b_out, x)?);
        }
        let to_tokens = |t: &Tensor| -> Result<Tensor> { Ok(t.reshape((b, c, h * w))?.transpose(1, 2)?.contiguous()?) };
        let to_image = |t: &Tensor| -> Result<Tensor> { Ok(t.transpose(1, 2)?.reshape((b, c, h, w))?) };
        let mut tokens = match &self.proj_in {
            Projection::Conv(conv) => to_tokens(&conv.forward(&normed)?)?,
            Projection::Linear(lin) => lin.forward(&to_tokens(&normed)?)?,
        };
        for block in &self.blocks {
            tokens = block.forward(&tokens, context)?;
        }
        let out = match &self.proj_out {
            Projection::Conv(conv) => conv.forward(&to_image(&tokens)?.contiguous()?)?,
            Projection::Linear(lin) => to_image(&lin.forward(&tokens)?)?,
        };
        Ok((out + x)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{DType, Device};

    use super::*;
    use crate::model::cpu::max_abs_diff;

    /// Cross-attention with random weights, loaded from a real safetensors file.
    fn cross_attention(dir: &std::path::Path, dim: usize, text_dim: usize) -> Attention {
        let dev = Device::Cpu;
        let path = dir.join("attn.safetensors");
        if !path.exists() {
            let mut tensors = HashMap::new();
            for (name, shape) in [
                ("to_q.weight", (dim, dim)),
                ("to_k.weight", (dim, text_dim)),
                ("to_v.weight", (dim, text_dim)),
                ("to_out.0.weight", (dim, dim)),
            ] {
                tensors.insert(name.to_string(), Tensor::randn(0f32, 0.3, shape, &dev).unwrap());
            }
            tensors.insert(
                "to_out.0.bias".to_string(),
                Tensor::randn(0f32, 0.1, dim, &dev).unwrap(),
            );
            candle_core::safetensors::save(&tensors, &path).unwrap();
        }
        let weights = Weights::from_files(&[path], DType::F32, &dev).unwrap();
        Attention::load(&weights, dim, text_dim, 2, false).unwrap()
    }

    #[test]
    fn text_projections_are_reused_only_for_the_same_text() {
        let dir = tempfile::tempdir().unwrap();
        let dev = Device::Cpu;
        let (dim, text_dim) = (16, 8);
        let attn = cross_attention(dir.path(), dim, text_dim);
        let x = Tensor::randn(0f32, 1.0, (2, 5, dim), &dev).unwrap();
        let residual = Tensor::zeros((2, 5, dim), DType::F32, &dev).unwrap();
        let text_a = Tensor::randn(0f32, 1.0, (2, 3, text_dim), &dev).unwrap();
        let text_b = Tensor::randn(0f32, 1.0, (2, 3, text_dim), &dev).unwrap();

        let a_first = attn.forward(&x, Some(&text_a), &residual).unwrap();
        let b = attn.forward(&x, Some(&text_b), &residual).unwrap();
        let a_again = attn.forward(&x, Some(&text_a), &residual).unwrap();
        let b_again = attn.forward(&x, Some(&text_b), &residual).unwrap();

        // Each text gives what a fresh layer (nothing cached) gives for it.
        let fresh = |text: &Tensor| {
            cross_attention(dir.path(), dim, text_dim)
                .forward(&x, Some(text), &residual)
                .unwrap()
        };
        assert_eq!(max_abs_diff(&a_first, &fresh(&text_a)), 0.0);
        assert_eq!(max_abs_diff(&b, &fresh(&text_b)), 0.0);
        assert_eq!(max_abs_diff(&a_again, &a_first), 0.0);
        assert_eq!(max_abs_diff(&b_again, &b), 0.0);
        assert!(
            max_abs_diff(&a_first, &b) > 1e-3,
            "different texts must not share K and V"
        );
    }
}
