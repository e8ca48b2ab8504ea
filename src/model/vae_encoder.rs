//! The encoder half of diffusers' `AutoencoderKL`: RGB in [-1, 1] → the latent distribution
//! (`Encoder` then `quant_conv`, read as `DiagonalGaussianDistribution`'s mean and log-variance).
//! Loaded only when a picture is to be encoded (img2img); a text-to-image load never reads it.

use candle_core::{DType, Device, Tensor};

use super::layers::{Conv2d, GroupNorm};
use super::resnet::{Downsample, ResnetBlock};
use super::vae::{MidBlock, TILE, TILE_ABOVE, TILE_OVERLAP, VaeConfig, run_tiled, vae_resnet};
use super::weights::Weights;
use crate::error::{Error, Result};

/// The latent distribution of an encoded image, both [B, latent_channels, H/8, W/8] in f32.
pub struct Posterior {
    pub mean: Tensor,
    /// Clamped to [-30, 20] as diffusers does.
    pub logvar: Tensor,
}

pub struct VaeEncoder {
    config: VaeConfig,
    conv_in: Conv2d,
    down: Vec<(Vec<ResnetBlock>, Option<Downsample>)>,
    mid: MidBlock,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
    quant_conv: Option<Conv2d>,
    dtype: DType,
}

impl VaeEncoder {
    /// From the VAE's weights in the diffusers layout (`encoder.*`, `quant_conv.*`): a
    /// diffusers `vae/` folder, or a single file's VAE seen through its name map.
    pub fn load(w: &Weights, config: VaeConfig) -> Result<VaeEncoder> {
        if !w.contains("encoder.conv_in.weight") {
            return Err(Error::weights(
                w.path(),
                "this VAE has no encoder (no encoder.* tensors): it can decode latents but not encode a picture",
            ));
        }
        let c = &config;
        let groups = c.norm_num_groups;
        let resnet = |w: &Weights, i: usize, o: usize| vae_resnet(w, i, o, groups);
        let e = w.pp("encoder");
        let channels = &c.block_out_channels;
        let top = *channels.last().expect("VaeConfig has at least one block");
        let mut down = Vec::new();
        let mut out_ch = channels[0];
        for (i, &ch) in channels.iter().enumerate() {
            let prev = out_ch;
            out_ch = ch;
            let bw = e.pp("down_blocks").pp(i);
            let resnets = (0..c.layers_per_block)
                .map(|j| resnet(&bw.pp("resnets").pp(j), if j == 0 { prev } else { out_ch }, out_ch))
                .collect::<Result<Vec<_>>>()?;
            // diffusers' DownEncoderBlock2D: `downsample_padding=0`, so the right and bottom
            // edges are padded by one by hand before the stride-2 conv.
            let downsample = if i + 1 < channels.len() {
                Some(Downsample::load(&bw.pp("downsamplers").pp(0), out_ch, out_ch, 0)?)
            } else {
                None
            };
            down.push((resnets, downsample));
        }
        let mid = e.pp("mid_block");
        let lc2 = 2 * c.latent_channels;
        Ok(VaeEncoder {
            conv_in: Conv2d::load(&e.pp("conv_in"), c.in_channels, channels[0], 3, 1, 1)?,
            down,
            mid: MidBlock::load(&mid, top, c)?,
            conv_norm_out: GroupNorm::load(&e.pp("conv_norm_out"), groups, top, 1e-6)?,
            conv_out: Conv2d::load(&e.pp("conv_out"), top, lc2, 3, 1, 1)?,
            quant_conv: if c.use_quant_conv {
                Some(Conv2d::load(&w.pp("quant_conv"), lc2, lc2, 1, 1, 0)?)
            } else {
                None
            },
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

    /// `AutoencoderKL.encode(image).latent_dist`: `image` is [B, in_channels, H, W] in
    /// [-1, 1] with H and W multiples of the VAE's scale factor (8).
    pub fn encode(&self, image: &Tensor) -> Result<Posterior> {
        let dims = image.dims();
        let [_, c, h, w] = dims else {
            return Err(Error::invalid(format!(
                "the VAE encodes a [batch, channels, height, width] image, not one of shape {dims:?}"
            )));
        };
        let (c, h, w) = (*c, *h, *w);
        if c != self.config.in_channels {
            return Err(Error::invalid(format!(
                "the VAE encodes {}-channel images, not {c}-channel ones",
                self.config.in_channels
            )));
        }
        let f = self.config.scale_factor();
        if h == 0 || w == 0 || !h.is_multiple_of(f) || !w.is_multiple_of(f) {
            return Err(Error::invalid(format!(
                "a {w}×{h} image cannot be encoded: width and height must be non-zero multiples of {f}"
            )));
        }
        let above = TILE_ABOVE * f;
        let moments = if h * w > above * above {
            self.tiled_moments(image, TILE * f, TILE_OVERLAP * f)?
        } else {
            self.moments(image)?
        };
        self.posterior(moments)
    }

    /// `AutoencoderKL.encode` with tiling: `tile`×`tile`-pixel tiles overlapping by `overlap`
    /// pixels, each encoded alone, their moments blended linearly over the overlap
    /// (diffusers' `_tiled_encode`, 512-pixel tiles and a quarter overlap by default). Images
    /// above 768² are encoded this way by [`Self::encode`], so a big start picture (hires fix,
    /// a photo) needs one tile's memory.
    pub fn encode_tiled(&self, image: &Tensor, tile: usize, overlap: usize) -> Result<Posterior> {
        self.posterior(self.tiled_moments(image, tile, overlap)?)
    }

    fn tiled_moments(&self, image: &Tensor, tile: usize, overlap: usize) -> Result<Tensor> {
        let f = self.config.scale_factor();
        if tile <= overlap || !tile.is_multiple_of(f) || !overlap.is_multiple_of(f) {
            return Err(Error::invalid(format!(
                "internal: encoder tiles of {tile} pixels overlapping by {overlap}"
            )));
        }
        run_tiled(image, tile, overlap, (overlap / f, (tile - overlap) / f), |part| {
            self.moments(part)
        })
    }

    /// Mean and log-variance (clamped to [-30, 20] as diffusers does) from the moments.
    fn posterior(&self, moments: Tensor) -> Result<Posterior> {
        let lc = self.config.latent_channels;
        Ok(Posterior {
            mean: moments.narrow(1, 0, lc)?,
            logvar: moments.narrow(1, lc, lc)?.clamp(-30f32, 20f32)?,
        })
    }

    /// The encoder and `quant_conv` on one piece: 2·latent_channels moments, f32.
    fn moments(&self, image: &Tensor) -> Result<Tensor> {
        let mut x = image.to_dtype(self.dtype)?;
        x = self.conv_in.forward(&x)?;
        for (resnets, downsample) in &self.down {
            for r in resnets {
                x = r.forward(&x, None)?;
            }
            if let Some(d) = downsample {
                x = d.forward(&x)?;
            }
        }
        x = self.mid.forward(&x)?;
        x = self.conv_norm_out.forward_silu(&x)?;
        x = self.conv_out.forward(&x)?;
        if let Some(q) = &self.quant_conv {
            x = q.forward(&x)?;
        }
        Ok(x.to_dtype(DType::F32)?)
    }

    /// The pipeline's latent scaling of an encoded mean, as diffusers' img2img pipelines do
    /// after `vae.encode`: `(z - latents_mean) · scaling_factor / latents_std` when the VAE
    /// declares per-channel statistics, else `(z - shift_factor) · scaling_factor` (no shift
    /// for SD's VAEs). The inverse of [`super::vae::VaeDecoder::unscale_latents`].
    pub fn scale_latents(&self, z: &Tensor) -> Result<Tensor> {
        let c = &self.config;
        let x = z.to_dtype(DType::F32)?;
        let x = match (&c.latents_mean, &c.latents_std) {
            (Some(mean), Some(std)) => {
                let shape = (1, mean.len(), 1, 1);
                let mean = Tensor::from_vec(mean.iter().map(|&v| v as f32).collect::<Vec<_>>(), shape, x.device())?;
                let std = Tensor::from_vec(std.iter().map(|&v| v as f32).collect::<Vec<_>>(), shape, x.device())?;
                (x.broadcast_sub(&mean)? * c.scaling_factor)?.broadcast_div(&std)?
            }
            _ => match c.shift_factor {
                Some(shift) => ((x - shift)? * c.scaling_factor)?,
                None => (x * c.scaling_factor)?,
            },
        };
        Ok(x)
    }

    /// The posterior's mean, scaled for the UNet (no sampling): `image` as for [`Self::encode`].
    pub fn encode_mean(&self, image: &Tensor) -> Result<Tensor> {
        self.scale_latents(&self.encode(image)?.mean)
    }
}

/// RGB8 pixels (row-major, `width·height·3` bytes) → [1, 3, H, W] in [-1, 1], f32: diffusers'
/// `VaeImageProcessor.preprocess` without resizing (`x / 255 · 2 - 1`).
pub fn rgb8_to_tensor(width: usize, height: usize, data: &[u8], device: &Device) -> Result<Tensor> {
    if data.len() != width * height * 3 {
        return Err(Error::invalid(format!(
            "{} bytes are not a {width}×{height} RGB picture ({} bytes)",
            data.len(),
            width * height * 3
        )));
    }
    let values: Vec<f32> = data.iter().map(|&v| v as f32 / 255.0 * 2.0 - 1.0).collect();
    Ok(Tensor::from_vec(values, (1, height, width, 3), device)?
        .permute((0, 3, 1, 2))?
        .contiguous()?)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::model::config::ConfigFile;

    fn config(v: serde_json::Value) -> VaeConfig {
        VaeConfig::from_config(&ConfigFile::from_value(Path::new("vae/config.json"), v)).unwrap()
    }

    #[test]
    fn the_encoder_fields_of_the_config_have_diffusers_defaults() {
        let c = config(json!({"shift_factor": null}));
        assert_eq!((c.in_channels, c.use_quant_conv, c.shift_factor), (3, true, None));
        let c = config(json!({"in_channels": 4, "use_quant_conv": false, "shift_factor": 0.1159}));
        assert_eq!(
            (c.in_channels, c.use_quant_conv, c.shift_factor),
            (4, false, Some(0.1159))
        );
    }

    #[test]
    fn pixels_become_minus_one_to_one_in_channel_planes() {
        // 2×1: a black and a white pixel, then red in the second.
        let t = rgb8_to_tensor(2, 1, &[0, 0, 0, 255, 255, 255], &Device::Cpu).unwrap();
        assert_eq!(t.dims(), [1, 3, 1, 2]);
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v, [-1.0, 1.0, -1.0, 1.0, -1.0, 1.0]);
        let t = rgb8_to_tensor(1, 1, &[255, 0, 51], &Device::Cpu).unwrap();
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v, [1.0, -1.0, 51.0 / 255.0 * 2.0 - 1.0]);
    }
}
