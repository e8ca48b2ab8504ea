//! diffusers' `ResnetBlock2D` (pre-norm, "default" time embedding), and the 2× up/down
//! samplers, shared by the UNet and the VAE.

use candle_core::Tensor;

use super::layers::{Conv2d, GroupNorm, Linear};
use super::weights::Weights;
use crate::error::Result;

pub struct ResnetBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    time_emb_proj: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv2d,
    conv_shortcut: Option<Conv2d>,
    output_scale_factor: f64,
}

pub struct ResnetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    /// Width of the time embedding, or `None` (VAE).
    pub temb_channels: Option<usize>,
    pub groups: usize,
    pub eps: f64,
    pub output_scale_factor: f64,
}

impl ResnetBlock {
    pub fn load(w: &Weights, c: &ResnetConfig) -> Result<ResnetBlock> {
        let time_emb_proj = match c.temb_channels {
            Some(t) => Some(Linear::load(&w.pp("time_emb_proj"), t, c.out_channels, true)?),
            None => None,
        };
        let conv_shortcut = if c.in_channels != c.out_channels {
            Some(Conv2d::load(
                &w.pp("conv_shortcut"),
                c.in_channels,
                c.out_channels,
                1,
                1,
                0,
            )?)
        } else {
            None
        };
        Ok(ResnetBlock {
            norm1: GroupNorm::load(&w.pp("norm1"), c.groups, c.in_channels, c.eps)?,
            conv1: Conv2d::load(&w.pp("conv1"), c.in_channels, c.out_channels, 3, 1, 1)?,
            time_emb_proj,
            norm2: GroupNorm::load(&w.pp("norm2"), c.groups, c.out_channels, c.eps)?,
            conv2: Conv2d::load(&w.pp("conv2"), c.out_channels, c.out_channels, 3, 1, 1)?,
            conv_shortcut,
            output_scale_factor: c.output_scale_factor,
        })
    }

    /// `temb` is the already-activated (SiLU) time embedding, shared by every block.
    pub fn forward(&self, x: &Tensor, temb_act: Option<&Tensor>) -> Result<Tensor> {
        let h = self.norm1.forward_silu(x)?;
        let time = match (&self.time_emb_proj, temb_act) {
            (Some(proj), Some(t)) => Some(proj.forward(t)?),
            _ => None,
        };
        let h = self.conv1.forward_fused(&h, time.as_ref(), None)?;
        let h = self.norm2.forward_silu(&h)?;
        let shortcut = match &self.conv_shortcut {
            Some(c) => c.forward(x)?,
            None => x.clone(),
        };
        let out = self.conv2.forward_fused(&h, None, Some(&shortcut))?;
        Ok(if self.output_scale_factor == 1.0 {
            out
        } else {
            (out / self.output_scale_factor)?
        })
    }
}

/// 2× nearest-neighbour upsampling then a 3×3 conv (`Upsample2D` with `use_conv`).
pub struct Upsample {
    conv: Conv2d,
}

impl Upsample {
    pub fn load(w: &Weights, channels: usize) -> Result<Upsample> {
        Ok(Upsample {
            conv: Conv2d::load(&w.pp("conv"), channels, channels, 3, 1, 1)?,
        })
    }

    /// `size` forces the output size (the UNet passes the skip connection's size when the
    /// latent is not a multiple of the total downsampling factor).
    pub fn forward(&self, x: &Tensor, size: Option<(usize, usize)>) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (oh, ow) = size.unwrap_or((2 * h, 2 * w));
        let up = if (oh, ow) == (2 * h, 2 * w) {
            x.upsample_nearest2d(oh, ow)?
        } else {
            nearest_resize(x, oh, ow)?
        };
        self.conv.forward(&up)
    }
}

/// PyTorch's `interpolate(mode="nearest", size=…)`: source index ⌊dst·in/out⌋.
fn nearest_resize(x: &Tensor, oh: usize, ow: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let index = |out: usize, inp: usize| -> Vec<u32> {
        let scale = inp as f32 / out as f32;
        (0..out)
            .map(|i| ((i as f32 * scale).floor() as usize).min(inp - 1) as u32)
            .collect()
    };
    let rows = Tensor::new(index(oh, h), x.device())?;
    let cols = Tensor::new(index(ow, w), x.device())?;
    Ok(x.index_select(&rows, 2)?.index_select(&cols, 3)?)
}

/// A stride-2 3×3 conv (`Downsample2D` with `use_conv`).
pub struct Downsample {
    conv: Conv2d,
    /// diffusers pads right and bottom by one by hand when the conv itself has no padding.
    pad_manually: bool,
}

impl Downsample {
    pub fn load(w: &Weights, in_channels: usize, out_channels: usize, padding: usize) -> Result<Downsample> {
        Ok(Downsample {
            conv: Conv2d::load(&w.pp("conv"), in_channels, out_channels, 3, 2, padding)?,
            pad_manually: padding == 0,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.pad_manually {
            let x = x.pad_with_zeros(3, 0, 1)?.pad_with_zeros(2, 0, 1)?;
            self.conv.forward(&x)
        } else {
            self.conv.forward(x)
        }
    }
}
