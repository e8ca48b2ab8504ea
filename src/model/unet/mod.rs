//! diffusers' `UNet2DConditionModel` for SD 1.x, 2.x, XL and Turbo, built from its config.

mod config;
mod transformer;

pub use config::{DownBlockKind, MidBlockKind, TextTimeConfig, UnetConfig};
pub use transformer::Attention;

use candle_core::{DType, Device, Tensor};

use self::transformer::{Transformer2D, TransformerConfig};
use crate::error::{Error, Result};
use crate::model::layers::{Conv2d, GroupNorm, Linear};
use crate::model::resnet::{Downsample, ResnetBlock, ResnetConfig, Upsample};
use crate::model::weights::Weights;

/// Sinusoidal timestep features (diffusers' `get_timestep_embedding`).
pub fn timestep_features(
    timesteps: &[f64],
    dim: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
    device: &Device,
) -> Result<Tensor> {
    let half = dim / 2;
    let mut data = Vec::with_capacity(timesteps.len() * dim);
    for &t in timesteps {
        // diffusers computes in f32; doing the same keeps the embedding bit-close.
        let args: Vec<f32> = (0..half)
            .map(|i| {
                let exponent = -(10000f32.ln()) * i as f32 / (half as f32 - freq_shift as f32);
                t as f32 * exponent.exp()
            })
            .collect();
        let (first, second): (Vec<f32>, Vec<f32>) = if flip_sin_to_cos {
            (
                args.iter().map(|a| a.cos()).collect(),
                args.iter().map(|a| a.sin()).collect(),
            )
        } else {
            (
                args.iter().map(|a| a.sin()).collect(),
                args.iter().map(|a| a.cos()).collect(),
            )
        };
        data.extend(first);
        data.extend(second);
        if dim % 2 == 1 {
            data.push(0.0);
        }
    }
    Ok(Tensor::from_vec(data, (timesteps.len(), dim), device)?)
}

/// `linear_1 → SiLU → linear_2`.
struct TimestepEmbedding {
    linear_1: Linear,
    linear_2: Linear,
}

impl TimestepEmbedding {
    fn load(w: &Weights, in_dim: usize, out_dim: usize) -> Result<TimestepEmbedding> {
        Ok(TimestepEmbedding {
            linear_1: Linear::load(&w.pp("linear_1"), in_dim, out_dim, true)?,
            linear_2: Linear::load(&w.pp("linear_2"), out_dim, out_dim, true)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.linear_2
            .forward(&candle_nn::ops::silu(&self.linear_1.forward(x)?)?)
    }
}

/// Resnets, each optionally followed by a transformer.
struct Layer {
    resnet: ResnetBlock,
    attention: Option<Transformer2D>,
}

impl Layer {
    fn forward(&self, x: &Tensor, temb: &Tensor, context: &Tensor) -> Result<Tensor> {
        let h = self.resnet.forward(x, Some(temb))?;
        match &self.attention {
            Some(a) => a.forward(&h, context),
            None => Ok(h),
        }
    }
}

struct DownBlock {
    layers: Vec<Layer>,
    downsample: Option<Downsample>,
}

struct UpBlock {
    layers: Vec<Layer>,
    upsample: Option<Upsample>,
}

struct MidBlock {
    first: ResnetBlock,
    rest: Vec<(Transformer2D, ResnetBlock)>,
}

/// Conditioning SDXL adds to the time embedding.
pub struct TextTimeConditioning<'a> {
    /// Pooled, projected text embeddings of the second encoder: [batch, proj_dim].
    pub text_embeds: &'a Tensor,
    /// (orig h, orig w, crop top, crop left, target h, target w) per batch row: [batch, 6].
    pub time_ids: &'a Tensor,
}

struct TextTimeEmbedding {
    time_dim: usize,
    embedding: TimestepEmbedding,
}

pub struct Unet {
    config: UnetConfig,
    conv_in: Conv2d,
    time_embedding: TimestepEmbedding,
    add_embedding: Option<TextTimeEmbedding>,
    down: Vec<DownBlock>,
    mid: Option<MidBlock>,
    up: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
    dtype: DType,
}

impl Unet {
    // Block i reads several per-block lists at once, as diffusers' constructor does.
    #[allow(clippy::needless_range_loop)]
    pub fn load(w: &Weights, config: UnetConfig) -> Result<Unet> {
        let c = &config;
        let ch = &c.block_out_channels;
        let n = ch.len();
        let temb = c.time_embed_dim;
        let resnet = |w: &Weights, in_ch: usize, out_ch: usize, scale: f64| {
            ResnetBlock::load(
                w,
                &ResnetConfig {
                    in_channels: in_ch,
                    out_channels: out_ch,
                    temb_channels: Some(temb),
                    groups: c.norm_num_groups,
                    eps: c.norm_eps,
                    output_scale_factor: scale,
                },
            )
        };
        let transformer = |w: &Weights, channels: usize, heads: usize, layers: usize, cross: usize| {
            Transformer2D::load(
                w,
                &TransformerConfig {
                    channels,
                    heads,
                    layers,
                    cross_attention_dim: cross,
                    groups: c.norm_num_groups,
                    use_linear_projection: c.use_linear_projection,
                    upcast_attention: c.upcast_attention,
                },
            )
        };

        let mut down = Vec::with_capacity(n);
        let mut out_ch = ch[0];
        for i in 0..n {
            let bw = w.pp("down_blocks").pp(i);
            let in_ch = out_ch;
            out_ch = ch[i];
            let mut layers = Vec::new();
            for j in 0..c.layers_per_block[i] {
                let res = resnet(
                    &bw.pp("resnets").pp(j),
                    if j == 0 { in_ch } else { out_ch },
                    out_ch,
                    1.0,
                )?;
                let attention = match c.down_blocks[i] {
                    DownBlockKind::CrossAttn => Some(transformer(
                        &bw.pp("attentions").pp(j),
                        out_ch,
                        c.heads[i],
                        c.transformer_layers_per_block[i],
                        c.cross_attention_dim[i],
                    )?),
                    DownBlockKind::Plain => None,
                };
                layers.push(Layer { resnet: res, attention });
            }
            let downsample = if i + 1 < n {
                Some(Downsample::load(
                    &bw.pp("downsamplers").pp(0),
                    out_ch,
                    out_ch,
                    c.downsample_padding,
                )?)
            } else {
                None
            };
            down.push(DownBlock { layers, downsample });
        }

        let mid_w = w.pp("mid_block");
        let deepest = ch[n - 1];
        let mid = match c.mid_block {
            MidBlockKind::None => None,
            MidBlockKind::Plain => Some(MidBlock {
                first: resnet(&mid_w.pp("resnets").pp(0), deepest, deepest, c.mid_block_scale_factor)?,
                rest: Vec::new(),
            }),
            MidBlockKind::CrossAttn => Some(MidBlock {
                first: resnet(&mid_w.pp("resnets").pp(0), deepest, deepest, c.mid_block_scale_factor)?,
                rest: vec![(
                    transformer(
                        &mid_w.pp("attentions").pp(0),
                        deepest,
                        c.heads[n - 1],
                        c.transformer_layers_per_block[n - 1],
                        c.cross_attention_dim[n - 1],
                    )?,
                    resnet(&mid_w.pp("resnets").pp(1), deepest, deepest, c.mid_block_scale_factor)?,
                )],
            }),
        };

        let rev: Vec<usize> = ch.iter().rev().copied().collect();
        let mut up = Vec::with_capacity(n);
        let mut out_ch = rev[0];
        for i in 0..n {
            let bw = w.pp("up_blocks").pp(i);
            let prev_out = out_ch;
            out_ch = rev[i];
            let in_ch = rev[(i + 1).min(n - 1)];
            let num_layers = c.layers_per_block[n - 1 - i] + 1;
            let mut layers = Vec::new();
            for j in 0..num_layers {
                let skip = if j + 1 == num_layers { in_ch } else { out_ch };
                let res_in = if j == 0 { prev_out } else { out_ch };
                let res = resnet(&bw.pp("resnets").pp(j), res_in + skip, out_ch, 1.0)?;
                let attention = match c.up_blocks[i] {
                    DownBlockKind::CrossAttn => Some(transformer(
                        &bw.pp("attentions").pp(j),
                        out_ch,
                        c.heads[n - 1 - i],
                        c.up_transformer_layers[i][j],
                        c.cross_attention_dim[n - 1 - i],
                    )?),
                    DownBlockKind::Plain => None,
                };
                layers.push(Layer { resnet: res, attention });
            }
            let upsample = if i + 1 < n {
                Some(Upsample::load(&bw.pp("upsamplers").pp(0), out_ch)?)
            } else {
                None
            };
            up.push(UpBlock { layers, upsample });
        }

        let add_embedding = match &c.text_time {
            Some(tt) => Some(TextTimeEmbedding {
                time_dim: tt.addition_time_embed_dim,
                embedding: TimestepEmbedding::load(
                    &w.pp("add_embedding"),
                    tt.projection_class_embeddings_input_dim,
                    temb,
                )?,
            }),
            None => None,
        };

        Ok(Unet {
            conv_in: Conv2d::load(&w.pp("conv_in"), c.in_channels, ch[0], 3, 1, 1)?,
            time_embedding: TimestepEmbedding::load(&w.pp("time_embedding"), ch[0], temb)?,
            add_embedding,
            down,
            mid,
            up,
            conv_norm_out: GroupNorm::load(&w.pp("conv_norm_out"), c.norm_num_groups, ch[0], c.norm_eps)?,
            conv_out: Conv2d::load(&w.pp("conv_out"), ch[0], c.out_channels, 3, 1, 1)?,
            dtype: w.compute_dtype(),
            config,
        })
    }

    pub fn config(&self) -> &UnetConfig {
        &self.config
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Predicts noise (or v, or the sample) for `sample` [batch, C, h, w] at `timestep`,
    /// conditioned on `context` [batch, tokens, dim].
    pub fn forward(
        &self,
        sample: &Tensor,
        timestep: f64,
        context: &Tensor,
        text_time: Option<TextTimeConditioning>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let batch = sample.dim(0)?;
        let device = sample.device();
        let sample = sample.to_dtype(self.dtype)?;
        let context = context.to_dtype(self.dtype)?;

        let t_feat = timestep_features(
            &vec![timestep; batch],
            c.block_out_channels[0],
            c.flip_sin_to_cos,
            c.freq_shift,
            device,
        )?
        .to_dtype(self.dtype)?;
        let mut emb = self.time_embedding.forward(&t_feat)?;
        match (&self.add_embedding, text_time) {
            (Some(add), Some(tt)) => {
                let ids: Vec<f64> = tt.time_ids.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
                let time_embeds = timestep_features(&ids, add.time_dim, c.flip_sin_to_cos, c.freq_shift, device)?
                    .reshape((batch, ()))?
                    .to_dtype(self.dtype)?;
                let add_embeds = Tensor::cat(&[&tt.text_embeds.to_dtype(self.dtype)?, &time_embeds], 1)?;
                emb = (emb + add.embedding.forward(&add_embeds)?)?;
            }
            (Some(_), None) => {
                return Err(Error::invalid(
                    "this UNet needs SDXL's pooled text embeddings and size conditioning",
                ));
            }
            (None, _) => {}
        }
        let temb = candle_nn::ops::silu(&emb)?;

        let mut x = if c.center_input_sample {
            ((sample * 2.0)? - 1.0)?
        } else {
            sample
        };
        x = self.conv_in.forward(&x)?;
        let mut skips = vec![x.clone()];
        for block in &self.down {
            for layer in &block.layers {
                x = layer.forward(&x, &temb, &context)?;
                skips.push(x.clone());
            }
            if let Some(ds) = &block.downsample {
                x = ds.forward(&x)?;
                skips.push(x.clone());
            }
        }
        if let Some(mid) = &self.mid {
            x = mid.first.forward(&x, Some(&temb))?;
            for (attn, res) in &mid.rest {
                x = attn.forward(&x, &context)?;
                x = res.forward(&x, Some(&temb))?;
            }
        }

        // When the latent is not a multiple of the total downsampling, each upsampler must hit
        // its skip connection's size exactly.
        let factor = 1usize << c.num_upsamplers();
        let (_, _, h, w) = sample_dims(&skips[0])?;
        let force_size = h % factor != 0 || w % factor != 0;
        for block in &self.up {
            for layer in &block.layers {
                let skip = skips
                    .pop()
                    .ok_or_else(|| Error::invalid("UNet skip connections ran out"))?;
                x = Tensor::cat(&[&x, &skip], 1)?;
                x = layer.forward(&x, &temb, &context)?;
            }
            if let Some(us) = &block.upsample {
                let size = match (force_size, skips.last()) {
                    (true, Some(s)) => Some((s.dim(2)?, s.dim(3)?)),
                    _ => None,
                };
                x = us.forward(&x, size)?;
            }
        }
        x = self.conv_norm_out.forward_silu(&x)?;
        self.conv_out.forward(&x)
    }
}

fn sample_dims(t: &Tensor) -> Result<(usize, usize, usize, usize)> {
    Ok(t.dims4()?)
}
