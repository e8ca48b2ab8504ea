//! The decoder half of diffusers' `AutoencoderKL`: latents → RGB in [-1, 1].

use std::path::Path;

use candle_core::{DType, Tensor};
use serde_json::{Value, json};

use super::config::ConfigFile;
use super::cpu;
use super::layers::{Conv2d, GroupNorm, Linear, attention};
use super::resnet::{ResnetBlock, ResnetConfig, Upsample};
use super::weights::Weights;
use crate::error::Result;

#[derive(Clone, Debug)]
pub struct VaeConfig {
    pub latent_channels: usize,
    /// Image channels the encoder takes (3).
    pub in_channels: usize,
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub norm_num_groups: usize,
    pub scaling_factor: f64,
    /// Decode in f32 even when the rest runs in f16 (SDXL's VAE overflows in f16).
    pub force_upcast: bool,
    pub use_post_quant_conv: bool,
    /// The encoder's 1×1 conv after `conv_out` (every SD VAE has one).
    pub use_quant_conv: bool,
    pub mid_block_add_attention: bool,
    /// Per-channel latent statistics some VAEs declare (`latents_mean` / `latents_std`).
    pub latents_mean: Option<Vec<f64>>,
    pub latents_std: Option<Vec<f64>>,
    /// Subtracted before scaling when encoding (SD3-style VAEs; `None` for SD's).
    pub shift_factor: Option<f64>,
}

impl VaeConfig {
    pub fn read(path: &Path) -> Result<VaeConfig> {
        Self::from_config(&ConfigFile::read(path)?)
    }

    /// From a parsed config (a file's, or one built from a single-file checkpoint's shapes).
    pub fn from_config(c: &ConfigFile) -> Result<VaeConfig> {
        if let Some(types) = c.str_list("up_block_types")?
            && let Some(bad) = types.iter().find(|t| t.as_str() != "UpDecoderBlock2D")
        {
            return Err(c.error(
                "up_block_types",
                format!("block type `{bad}` is not supported (UpDecoderBlock2D)"),
            ));
        }
        c.require_default("norm_type", &[json!("group")])?;
        c.require_default("act_fn", &[json!("silu")])?;
        let block_out_channels = c.usize_list("block_out_channels")?.unwrap_or_else(|| vec![64]);
        let norm_num_groups = c.usize_or("norm_num_groups", 32)?;
        if let Some(bad) = block_out_channels
            .iter()
            .find(|&&ch| norm_num_groups == 0 || ch % norm_num_groups != 0)
        {
            return Err(c.error(
                "norm_num_groups",
                format!("{norm_num_groups} groups do not divide {bad} channels"),
            ));
        }
        let stats = |field: &str| -> Result<Option<Vec<f64>>> {
            match c.raw(field) {
                None => Ok(None),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| x.as_f64().ok_or_else(|| c.error(field, "expected numbers")))
                    .collect::<Result<Vec<_>>>()
                    .map(Some),
                Some(v) => Err(c.error(field, format!("expected a list of numbers, got {v}"))),
            }
        };
        let latent_channels = c.usize_or("latent_channels", 4)?;
        let latents_mean = stats("latents_mean")?;
        let latents_std = stats("latents_std")?;
        for (field, v) in [("latents_mean", &latents_mean), ("latents_std", &latents_std)] {
            if v.as_ref().is_some_and(|v| v.len() != latent_channels) {
                return Err(c.error(field, format!("needs {latent_channels} entries")));
            }
        }
        Ok(VaeConfig {
            latent_channels,
            in_channels: c.usize_or("in_channels", 3)?,
            out_channels: c.usize_or("out_channels", 3)?,
            block_out_channels,
            layers_per_block: c.usize_or("layers_per_block", 1)?,
            norm_num_groups,
            scaling_factor: c.f64_or("scaling_factor", 0.18215)?,
            force_upcast: c.bool_or("force_upcast", true)?,
            use_post_quant_conv: c.bool_or("use_post_quant_conv", true)?,
            use_quant_conv: c.bool_or("use_quant_conv", true)?,
            mid_block_add_attention: c.bool_or("mid_block_add_attention", true)?,
            latents_mean,
            latents_std,
            shift_factor: match c.has("shift_factor") {
                true => Some(c.f64_or("shift_factor", 0.0)?),
                false => None,
            },
        })
    }

    /// How much smaller the latent is than the image (8 for every SD VAE).
    pub fn scale_factor(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }
}

/// Single-head self-attention over all pixels with a residual (the VAE mid block's, in the
/// decoder and the encoder).
pub(super) struct SpatialAttention {
    group_norm: GroupNorm,
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
}

impl SpatialAttention {
    pub(super) fn load(w: &Weights, channels: usize, groups: usize) -> Result<SpatialAttention> {
        // Older checkpoints use query/key/value/proj_attn; diffusers converts them on load.
        let (q, k, v, o) = if w.contains("query.weight") {
            ("query", "key", "value", "proj_attn")
        } else {
            ("to_q", "to_k", "to_v", "to_out.0")
        };
        let lin = |name: &str| -> Result<Linear> {
            let lw = w.pp(name);
            // Very old checkpoints stored these as 1×1 convs.
            if lw.contains("weight") && lw.get_unchecked("weight")?.rank() == 4 {
                return linear_from_conv(&lw, channels);
            }
            Linear::load(&lw, channels, channels, true)
        };
        Ok(SpatialAttention {
            group_norm: GroupNorm::load(&w.pp("group_norm"), groups, channels, 1e-6)?,
            to_q: lin(q)?,
            to_k: lin(k)?,
            to_v: lin(v)?,
            to_out: lin(o)?,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let normed = self.group_norm.forward(x)?;
        let scale = (c as f64).powf(-0.5);
        if cpu::is_cpu_f32(&normed) {
            let f32 = DType::F32;
            let no_bias = || crate::error::Error::invalid("VAE attention without bias");
            let project = |l: &Linear| -> Result<Tensor> {
                let bias = l.bias(f32)?.ok_or_else(no_bias)?;
                Ok(cpu::matmul::image_to_tokens(&normed, &l.weight(f32)?, &bias)?)
            };
            let (q, k, v) = (project(&self.to_q)?, project(&self.to_k)?, project(&self.to_v)?);
            let out = cpu::attention::attention(&q, &k, &v, 1, scale as f32)?;
            let bias = self.to_out.bias(f32)?.ok_or_else(no_bias)?;
            return Ok(cpu::matmul::tokens_to_image(&out, &self.to_out.weight(f32)?, &bias, x)?);
        }
        let tokens = normed.reshape((b, c, h * w))?.transpose(1, 2)?.contiguous()?;
        let heads = |t: Tensor| -> Result<Tensor> { Ok(t.unsqueeze(1)?) };
        let q = heads(self.to_q.forward(&tokens)?)?;
        let k = heads(self.to_k.forward(&tokens)?)?;
        let v = heads(self.to_v.forward(&tokens)?)?;
        let out = attention(&q, &k, &v, scale, true, None)?.squeeze(1)?;
        let out = self.to_out.forward(&out)?;
        let out = out.transpose(1, 2)?.reshape((b, c, h, w))?;
        Ok((out + x)?)
    }
}

fn linear_from_conv(w: &Weights, channels: usize) -> Result<Linear> {
    let weight = w
        .get("weight", (channels, channels, 1, 1))?
        .reshape((channels, channels))?;
    let bias = w.get("bias", channels)?;
    Ok(Linear::from_tensors(weight, Some(bias)))
}

pub struct VaeDecoder {
    config: VaeConfig,
    post_quant_conv: Option<Conv2d>,
    conv_in: Conv2d,
    mid: MidBlock,
    up: Vec<(Vec<ResnetBlock>, Option<Upsample>)>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
    dtype: DType,
}

/// Latents larger than this per side (in area) are decoded in tiles: 96 → images above 768².
pub const TILE_ABOVE: usize = 96;
/// Tile size and overlap in latent pixels (diffusers' defaults for SD: 512-pixel tiles, ¼ overlap).
pub const TILE: usize = 64;
pub const TILE_OVERLAP: usize = 16;

/// Blends the first `extent` pixels of `b` along `dim` (2 = rows, 3 = columns) with the last
/// `extent` of `a`, weights going linearly from `a` to `b` (diffusers' `blend_v`/`blend_h`).
fn blend_edge(a: &Tensor, b: &Tensor, dim: usize, extent: usize) -> Result<Tensor> {
    let extent = extent.min(a.dim(dim)?).min(b.dim(dim)?);
    if extent == 0 {
        return Ok(b.clone());
    }
    let a_len = a.dim(dim)?;
    // The overlapping strips must have the same size in the other dimension.
    let other = if dim == 2 { 3 } else { 2 };
    let span = a.dim(other)?.min(b.dim(other)?);
    let a_strip = a.narrow(dim, a_len - extent, extent)?.narrow(other, 0, span)?;
    let b_strip = b.narrow(dim, 0, extent)?.narrow(other, 0, span)?;
    let ramp: Vec<f32> = (0..extent).map(|y| y as f32 / extent as f32).collect();
    let shape: Vec<usize> = (0..4).map(|d| if d == dim { extent } else { 1 }).collect();
    let ramp = Tensor::from_vec(ramp, shape, b.device())?.to_dtype(b.dtype())?;
    let mixed = (a_strip.broadcast_mul(&(1.0 - &ramp)?)? + b_strip.broadcast_mul(&ramp)?)?;
    // Reassemble b with the blended strip in front.
    let rest_b = b.narrow(dim, extent, b.dim(dim)? - extent)?;
    let mixed = if span < b.dim(other)? {
        let tail = b.narrow(dim, 0, extent)?.narrow(other, span, b.dim(other)? - span)?;
        Tensor::cat(&[&mixed, &tail], other)?
    } else {
        mixed
    };
    Ok(Tensor::cat(&[&mixed, &rest_b], dim)?)
}

/// Runs `f` on `tile`×`tile` tiles of `x` (rows and columns `tile - overlap` apart, the last
/// ones partial) and stitches the outputs as diffusers' tiled VAE does: each output blended
/// linearly over its first `blend` rows and columns with the already-blended tiles above and
/// to the left, then its first `keep` rows and columns kept. `blend` and `keep` are in the
/// output's units (the decoder's are 8× the input's, the encoder's ⅛).
pub(crate) fn run_tiled(
    x: &Tensor,
    tile: usize,
    overlap: usize,
    (blend, keep): (usize, usize),
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let stride = tile - overlap;
    let starts = |n: usize| -> Vec<usize> { (0..n).step_by(stride).collect() };
    let mut rows: Vec<Vec<Tensor>> = Vec::new();
    for (ri, &y) in starts(h).iter().enumerate() {
        let mut row: Vec<Tensor> = Vec::new();
        for (ci, &x0) in starts(w).iter().enumerate() {
            let part = x.narrow(2, y, tile.min(h - y))?.narrow(3, x0, tile.min(w - x0))?;
            let mut out = f(&part)?;
            if ri > 0 {
                out = blend_edge(&rows[ri - 1][ci], &out, 2, blend)?;
            }
            if ci > 0 {
                out = blend_edge(&row[ci - 1], &out, 3, blend)?;
            }
            row.push(out);
        }
        rows.push(row);
    }
    let mut out_rows = Vec::with_capacity(rows.len());
    for row in &rows {
        let parts = row
            .iter()
            .map(|t| -> Result<Tensor> { Ok(t.narrow(2, 0, keep.min(t.dim(2)?))?.narrow(3, 0, keep.min(t.dim(3)?))?) })
            .collect::<Result<Vec<_>>>()?;
        out_rows.push(Tensor::cat(&parts, 3)?);
    }
    Ok(Tensor::cat(&out_rows, 2)?)
}

/// A resnet block of the VAE's (no time embedding, eps 1e-6), encoder and decoder alike.
pub(crate) fn vae_resnet(w: &Weights, in_channels: usize, out_channels: usize, groups: usize) -> Result<ResnetBlock> {
    ResnetBlock::load(
        w,
        &ResnetConfig {
            in_channels,
            out_channels,
            temb_channels: None,
            groups,
            eps: 1e-6,
            output_scale_factor: 1.0,
        },
    )
}

/// `UNetMidBlock2D` of the VAE: resnet, self-attention (unless the config leaves it out),
/// resnet, at the widest channel count. The encoder and the decoder each have one.
pub(crate) struct MidBlock {
    resnet_1: ResnetBlock,
    attention: Option<SpatialAttention>,
    resnet_2: ResnetBlock,
}

impl MidBlock {
    pub(crate) fn load(w: &Weights, channels: usize, c: &VaeConfig) -> Result<MidBlock> {
        let groups = c.norm_num_groups;
        Ok(MidBlock {
            resnet_1: vae_resnet(&w.pp("resnets").pp(0), channels, channels, groups)?,
            attention: if c.mid_block_add_attention {
                Some(SpatialAttention::load(&w.pp("attentions").pp(0), channels, groups)?)
            } else {
                None
            },
            resnet_2: vae_resnet(&w.pp("resnets").pp(1), channels, channels, groups)?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.resnet_1.forward(x, None)?;
        if let Some(attn) = &self.attention {
            x = attn.forward(&x)?;
        }
        self.resnet_2.forward(&x, None)
    }
}

impl VaeDecoder {
    pub fn load(w: &Weights, config: VaeConfig) -> Result<VaeDecoder> {
        let c = &config;
        let groups = c.norm_num_groups;
        let resnet = |w: &Weights, i: usize, o: usize| vae_resnet(w, i, o, groups);
        let lc = c.latent_channels;
        let post_quant_conv = if c.use_post_quant_conv {
            Some(Conv2d::load(&w.pp("post_quant_conv"), lc, lc, 1, 1, 0)?)
        } else {
            None
        };
        let d = w.pp("decoder");
        let rev: Vec<usize> = c.block_out_channels.iter().rev().copied().collect();
        let top = rev[0];
        let mid = d.pp("mid_block");
        let mut up = Vec::new();
        let mut out_ch = rev[0];
        for (i, &ch) in rev.iter().enumerate() {
            let prev = out_ch;
            out_ch = ch;
            let bw = d.pp("up_blocks").pp(i);
            let resnets = (0..=c.layers_per_block)
                .map(|j| resnet(&bw.pp("resnets").pp(j), if j == 0 { prev } else { out_ch }, out_ch))
                .collect::<Result<Vec<_>>>()?;
            let upsample = if i + 1 < rev.len() {
                Some(Upsample::load(&bw.pp("upsamplers").pp(0), out_ch)?)
            } else {
                None
            };
            up.push((resnets, upsample));
        }
        Ok(VaeDecoder {
            post_quant_conv,
            conv_in: Conv2d::load(&d.pp("conv_in"), lc, top, 3, 1, 1)?,
            mid: MidBlock::load(&mid, top, c)?,
            up,
            conv_norm_out: GroupNorm::load(&d.pp("conv_norm_out"), groups, c.block_out_channels[0], 1e-6)?,
            conv_out: Conv2d::load(&d.pp("conv_out"), c.block_out_channels[0], c.out_channels, 3, 1, 1)?,
            dtype: w.compute_dtype(),
            config,
        })
    }

    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Undoes the pipeline's latent scaling (and per-channel statistics when declared), as
    /// diffusers does before `vae.decode`.
    pub fn unscale_latents(&self, latents: &Tensor) -> Result<Tensor> {
        let c = &self.config;
        let x = latents.to_dtype(DType::F32)?;
        let x = match (&c.latents_mean, &c.latents_std) {
            (Some(mean), Some(std)) => {
                let shape = (1, mean.len(), 1, 1);
                let mean = Tensor::from_vec(mean.iter().map(|&v| v as f32).collect::<Vec<_>>(), shape, x.device())?;
                let std = Tensor::from_vec(std.iter().map(|&v| v as f32).collect::<Vec<_>>(), shape, x.device())?;
                ((x.broadcast_mul(&std)? / c.scaling_factor)?.broadcast_add(&mean))?
            }
            _ => (x / c.scaling_factor)?,
        };
        Ok(x)
    }

    /// Decodes already-unscaled latents to an image tensor in [-1, 1] (f32). Latents larger
    /// than [`TILE_ABOVE`] per side are decoded in overlapping tiles (see [`Self::decode_tiled`]),
    /// which keeps a 1024² decode within a few GB.
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = z.dims4()?;
        if h * w > TILE_ABOVE * TILE_ABOVE {
            return self.decode_tiled(z, TILE, TILE_OVERLAP);
        }
        self.decode_whole(z)
    }

    /// Decodes in `tile`×`tile` latent tiles that overlap by `overlap`, blending the overlap
    /// linearly, as diffusers' `AutoencoderKL.tiled_decode` does (tile 64, a quarter overlap).
    /// Peak memory is that of one tile; the seams are invisible in practice, though pixels near
    /// them differ slightly from a whole decode (each tile's attention sees only its tile).
    pub fn decode_tiled(&self, z: &Tensor, tile: usize, overlap: usize) -> Result<Tensor> {
        let f = self.config.scale_factor();
        run_tiled(z, tile, overlap, (overlap * f, (tile - overlap) * f), |part| {
            self.decode_whole(part)
        })
    }

    /// Decodes in one piece, whatever the size.
    pub fn decode_whole(&self, z: &Tensor) -> Result<Tensor> {
        let mut x = z.to_dtype(self.dtype)?;
        if let Some(pq) = &self.post_quant_conv {
            x = pq.forward(&x)?;
        }
        x = self.conv_in.forward(&x)?;
        x = self.mid.forward(&x)?;
        for (resnets, upsample) in &self.up {
            for r in resnets {
                x = r.forward(&x, None)?;
            }
            if let Some(u) = upsample {
                x = u.forward(&x, None)?;
            }
        }
        x = self.conv_norm_out.forward_silu(&x)?;
        Ok(self.conv_out.forward(&x)?.to_dtype(DType::F32)?)
    }
}
