//! The small building blocks every model here is made of, loaded from [`Weights`] with the
//! shapes the config implies. Kept as our own types so the hot ones can be tuned in one place.

use candle_core::{D, DType, Module, Tensor};

use super::cpu;
use super::weights::Weights;
use crate::error::Result;

pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn load(w: &Weights, in_dim: usize, out_dim: usize, bias: bool) -> Result<Linear> {
        let weight = w.get("weight", (out_dim, in_dim))?;
        let bias = if bias { Some(w.get("bias", out_dim)?) } else { None };
        Ok(Linear { weight, bias })
    }

    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Linear {
        Linear { weight, bias }
    }

    /// The layers `names` under `w` (each `in_dim` → `out_dim`, with a bias) as one layer
    /// computing them side by side, recorded so that patching one part (a LoRA on `q_proj`)
    /// reaches its rows of the fused weight.
    pub fn load_fused(w: &Weights, names: &[&str], in_dim: usize, out_dim: usize) -> Result<Linear> {
        let parts = names
            .iter()
            .map(|n| Linear::load(&w.pp(n), in_dim, out_dim, true))
            .collect::<Result<Vec<_>>>()?;
        let fused = Linear::concat(&parts)?;
        drop(parts);
        let weights: Vec<String> = names.iter().map(|n| format!("{n}.weight")).collect();
        let weights: Vec<&str> = weights.iter().map(String::as_str).collect();
        w.register_fused(&weights, &vec![out_dim; names.len()], &fused.weight);
        let biases: Vec<String> = names.iter().map(|n| format!("{n}.bias")).collect();
        let biases: Vec<&str> = biases.iter().map(String::as_str).collect();
        if let Some(b) = &fused.bias {
            w.register_fused(&biases, &vec![out_dim; names.len()], b);
        }
        Ok(fused)
    }

    /// One layer computing all of `parts` side by side (outputs concatenated in order); the
    /// parts must share the input size and all have a bias or none.
    pub fn concat(parts: &[Linear]) -> Result<Linear> {
        let weights: Vec<&Tensor> = parts.iter().map(|p| &p.weight).collect();
        let biases: Option<Vec<&Tensor>> = parts.iter().map(|p| p.bias.as_ref()).collect();
        Ok(Linear {
            weight: Tensor::cat(&weights, 0)?,
            bias: biases.map(|b| Tensor::cat(&b, 0)).transpose()?,
        })
    }

    pub fn out_dim(&self) -> usize {
        self.weight.dim(0).unwrap_or(0)
    }

    /// `x @ Wᵀ + b` over the last dimension, for inputs of any rank ≥ 2.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if cpu::is_cpu_f32(x) {
            let (w, b) = (self.weight(x.dtype())?, self.bias(x.dtype())?);
            return Ok(cpu::matmul::linear(x, &w, b.as_ref(), None)?);
        }
        self.forward_generic(x)
    }

    /// `x @ Wᵀ + b + residual`, the residual added as the product is written on the CPU.
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        if cpu::is_cpu_f32(x) {
            let (w, b) = (self.weight(x.dtype())?, self.bias(x.dtype())?);
            return Ok(cpu::matmul::linear(x, &w, b.as_ref(), Some(residual))?);
        }
        Ok((self.forward_generic(x)? + residual)?)
    }

    /// The weight in `dtype` (widened on the fly when stored as f16/bf16).
    pub fn weight(&self, dtype: DType) -> Result<Tensor> {
        Ok(self.weight.to_dtype(dtype)?)
    }

    pub fn bias(&self, dtype: DType) -> Result<Option<Tensor>> {
        Ok(self.bias.as_ref().map(|b| b.to_dtype(dtype)).transpose()?)
    }

    fn forward_generic(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let in_dim = *dims.last().unwrap_or(&0);
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let x2 = x.reshape((rows, in_dim))?;
        let mut y = x2.matmul(&self.weight(x.dtype())?.t()?)?;
        if let Some(b) = self.bias(x.dtype())? {
            y = y.broadcast_add(&b)?;
        }
        let mut out_dims = dims;
        *out_dims.last_mut().expect("rank ≥ 1") = self.weight.dim(0)?;
        Ok(y.reshape(out_dims)?)
    }
}

pub struct Conv2d {
    inner: candle_nn::Conv2d,
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
}

/// Below this many output pixels (over the batch), transforming the weights for Winograd
/// costs more than it saves; im2col and one product per image serve better.
///
/// The transform is memory-bound while the products it saves are compute-bound, so the
/// break-even moves with the arithmetic rate. With 512-bit FMAs im2col's direct product is
/// fast enough to win up to 2,048 pixels. At AVX2 (half that rate) Winograd already pays at
/// 512, the 16×16 level of a batch-2 step: measured with AVX-512 hidden, a 256² step went
/// from 1.72–1.74 to 1.57–1.58 s and a 512² step from 7.29–7.69 to 7.00–7.35 s; 128 pixels
/// (the 8×8 level) was slower again (1.73–1.80 s). The generic level's scalar products are
/// slower still, so it takes the AVX2 limit (not measured separately).
fn winograd_min_pixels(level: cpu::simd::Level) -> usize {
    match level {
        cpu::simd::Level::Avx512 => 2048,
        cpu::simd::Level::Avx2 | cpu::simd::Level::Baseline => 512,
    }
}

impl Conv2d {
    pub fn load(
        w: &Weights,
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Conv2d> {
        let weight = w.get("weight", (out_ch, in_ch, kernel, kernel))?;
        let bias = w.get("bias", out_ch)?;
        Ok(Self::from_parts(weight, bias, kernel, stride, padding))
    }

    /// A convolution stored without a bias (TAESD's strided and upsampling convolutions):
    /// a zero bias, so every kernel path stays the one with a bias, exactly.
    pub fn load_without_bias(
        w: &Weights,
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Conv2d> {
        let weight = w.get("weight", (out_ch, in_ch, kernel, kernel))?;
        let bias = Tensor::zeros(out_ch, weight.dtype(), weight.device())?;
        Ok(Self::from_parts(weight, bias, kernel, stride, padding))
    }

    fn from_parts(weight: Tensor, bias: Tensor, kernel: usize, stride: usize, padding: usize) -> Conv2d {
        let config = candle_nn::Conv2dConfig {
            padding,
            stride,
            dilation: 1,
            groups: 1,
            cudnn_fwd_algo: None,
        };
        Conv2d {
            inner: candle_nn::Conv2d::new(weight.clone(), Some(bias.clone()), config),
            weight,
            bias,
            kernel,
            stride,
            padding,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_fused(x, None, None)
    }

    /// The convolution plus a per-image channel bias `image_bias` [B, Co] (a resnet's time
    /// embedding) and a `residual` [B, Co, H, W], fused into the output pass on the CPU.
    pub fn forward_fused(&self, x: &Tensor, image_bias: Option<&Tensor>, residual: Option<&Tensor>) -> Result<Tensor> {
        let widened = self.weight.dtype() != x.dtype();
        let (weight, bias) = (self.weight.to_dtype(x.dtype())?, self.bias.to_dtype(x.dtype())?);
        if cpu::is_cpu_f32(x) && self.kernel == 3 {
            let (b, _, h, w) = x.dims4()?;
            if self.stride == 1 && self.padding == 1 && b * h * w >= winograd_min_pixels(cpu::simd::cpu_level()) {
                return Ok(cpu::winograd::conv3x3(x, &weight, &bias, image_bias, residual)?);
            }
            return Ok(cpu::conv::conv3x3(
                x,
                &weight,
                &bias,
                self.stride,
                self.padding,
                image_bias,
                residual,
            )?);
        }
        let mut y = if self.kernel == 1 && self.stride == 1 && self.padding == 0 && cpu::is_cpu_f32(x) {
            pointwise(x, &weight, &bias)?
        } else if widened {
            let config = candle_nn::Conv2dConfig {
                padding: self.padding,
                stride: self.stride,
                dilation: 1,
                groups: 1,
                cudnn_fwd_algo: None,
            };
            candle_nn::Conv2d::new(weight, Some(bias), config).forward(x)?
        } else {
            self.inner.forward(x)?
        };
        if let Some(t) = image_bias {
            y = y.broadcast_add(&t.unsqueeze(2)?.unsqueeze(3)?)?;
        }
        if let Some(r) = residual {
            y = (y + r)?;
        }
        Ok(y)
    }

    /// The weight as a matrix [Co, Ci] in `dtype` (1×1 kernels only).
    pub fn weight_matrix(&self, dtype: DType) -> Result<Tensor> {
        let (co, ci) = (self.weight.dim(0)?, self.weight.dim(1)?);
        Ok(self.weight.reshape((co, ci))?.to_dtype(dtype)?)
    }

    pub fn bias(&self, dtype: DType) -> Result<Tensor> {
        Ok(self.bias.to_dtype(dtype)?)
    }
}

/// A 1×1 convolution is one matrix product per image: W [Co, Ci] · X [Ci, H·W].
fn pointwise(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (co, ci) = (weight.dim(0)?, weight.dim(1)?);
    Ok(cpu::matmul::conv1x1(x, &weight.reshape((co, ci))?, bias)?)
}

pub struct GroupNorm {
    inner: candle_nn::GroupNorm,
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
}

impl GroupNorm {
    pub fn load(w: &Weights, groups: usize, channels: usize, eps: f64) -> Result<GroupNorm> {
        let w = w.with_dtype(w.compute_dtype());
        let weight = w.get("weight", channels)?;
        let bias = w.get("bias", channels)?;
        let inner = candle_nn::GroupNorm::new(weight.clone(), bias.clone(), channels, groups, eps)?;
        Ok(GroupNorm {
            inner,
            weight,
            bias,
            groups,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if cpu::is_cpu_f32(x) && self.weight.dtype() == DType::F32 {
            return Ok(cpu::group_norm::group_norm(
                x,
                self.groups,
                &self.weight,
                &self.bias,
                self.eps,
                false,
            )?);
        }
        Ok(self.inner.forward(x)?)
    }

    /// GroupNorm then SiLU, fused on the CPU (the pair every resnet block starts with).
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        if cpu::is_cpu_f32(x) && self.weight.dtype() == DType::F32 {
            return Ok(cpu::group_norm::group_norm(
                x,
                self.groups,
                &self.weight,
                &self.bias,
                self.eps,
                true,
            )?);
        }
        Ok(candle_nn::ops::silu(&self.inner.forward(x)?)?)
    }
}

pub struct LayerNorm {
    inner: candle_nn::LayerNorm,
}

impl LayerNorm {
    pub fn load(w: &Weights, dim: usize, eps: f64) -> Result<LayerNorm> {
        let w = w.with_dtype(w.compute_dtype());
        let weight = w.get("weight", dim)?;
        let bias = w.get("bias", dim)?;
        Ok(LayerNorm {
            inner: candle_nn::LayerNorm::new(weight, bias, eps),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.inner.forward(x)?)
    }
}

/// The activations the configs name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// Exact (erf) GELU, PyTorch's `gelu`.
    Gelu,
    /// CLIP's `x·σ(1.702x)`.
    QuickGelu,
}

impl Activation {
    pub fn parse(name: &str) -> Option<Activation> {
        match name {
            "silu" | "swish" => Some(Activation::Silu),
            "gelu" => Some(Activation::Gelu),
            "quick_gelu" => Some(Activation::QuickGelu),
            _ => None,
        }
    }

    pub fn forward(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Silu => candle_nn::ops::silu(x)?,
            Activation::Gelu => x.gelu_erf()?,
            Activation::QuickGelu => (x * candle_nn::ops::sigmoid(&(x * 1.702)?)?)?,
        })
    }
}

/// Bytes the attention score matrix may take per chunk; larger queries are split so that a
/// 512² image never materialises a full 4096×4096 matrix per head at once.
const ATTENTION_CHUNK_BYTES: usize = 256 << 20;

/// Scaled dot-product attention on `[batch, heads, seq, head_dim]` tensors, optionally
/// computing scores in f32 (diffusers' `upcast_attention`) and with an additive mask.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    upcast: bool,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, h, q_len, _) = q.dims4()?;
    let k_len = k.dim(2)?;
    let out_dtype = q.dtype();
    let (q, k, v) = if upcast && out_dtype != DType::F32 {
        (
            q.to_dtype(DType::F32)?,
            k.to_dtype(DType::F32)?,
            v.to_dtype(DType::F32)?,
        )
    } else {
        (q.clone(), k.clone(), v.clone())
    };
    let kt = k.t()?.contiguous()?;
    let row_bytes = b * h * k_len * 4;
    let chunk = (ATTENTION_CHUNK_BYTES / row_bytes.max(1)).clamp(1, q_len);
    let mut outputs = Vec::with_capacity(q_len.div_ceil(chunk));
    let mut start = 0;
    while start < q_len {
        let len = chunk.min(q_len - start);
        let qc = q.narrow(2, start, len)?;
        let mut scores = (qc.matmul(&kt)? * scale)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(&mask.narrow(D::Minus2, start, len)?)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        outputs.push(probs.matmul(&v)?);
        start += len;
    }
    let out = if outputs.len() == 1 {
        outputs.pop().expect("one chunk")
    } else {
        Tensor::cat(&outputs, 2)?
    };
    Ok(out.to_dtype(out_dtype)?)
}
