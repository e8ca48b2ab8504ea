//! TAESD, the tiny autoencoder (madebyollin's `taesd` / `taesdxl`, diffusers'
//! `AutoencoderTiny`): plain 3×3 convolutions, ReLU residual blocks and nearest-neighbour
//! upsampling, about 2.4M parameters where the full VAE has 84M. It decodes the UNet's latents
//! about as the VAE does, in a small fraction of the time: the live preview while sampling,
//! and "Draft decode" (a picture from it instead of the VAE).
//!
//! The math is diffusers' `EncoderTiny` / `DecoderTiny`:
//! - the decoder soft-clamps its input to (−3, 3) with `tanh(x / 3) · 3`, then conv → ReLU,
//!   then per stage its residual blocks, a ×2 nearest upsample and a bias-free conv (the last
//!   stage: blocks, then the conv to RGB, with a bias), and maps [0, 1] to [−1, 1] (`2x − 1`);
//!   the output is not clamped (the pipeline's post-processing clamps, as for the VAE);
//! - the encoder maps [−1, 1] to [0, 1], then per stage a conv (stride 2 and no bias after the
//!   first) and its blocks, then a conv to the latent channels;
//! - a block is `relu(conv(relu(conv(relu(conv(x))))) + x)`.
//!
//! Latents are the UNet's own: diffusers' pipelines divide by the VAE's `scaling_factor`
//! before decoding, and every released TAESD says 1.0 (it was distilled on the scaled
//! latents). `latent_magnitude` / `latent_shift` only serve `AutoencoderTiny.forward`'s 8-bit
//! round trip, which nothing here does.
//!
//! Weights come in two layouts, both read through [`Weights`] (memory-mapped):
//! - a diffusers folder (`config.json` + `diffusion_pytorch_model.safetensors`, what the Hub
//!   repos madebyollin/taesd and madebyollin/taesdxl hold), names `encoder.layers.N.*` and
//!   `decoder.layers.N.*` (indices of diffusers' `nn.Sequential`, activations and upsamples
//!   counted);
//! - madebyollin's own single files (`taesd_decoder.safetensors`, `taesd_encoder.safetensors`,
//!   A1111's `models/VAE-approx`), names `N.*`: the encoder's indices are diffusers', the
//!   decoder's one higher (its `Sequential` starts with the clamp). No config comes with them;
//!   they are the released architecture, read with its default config and the widths their
//!   first convolution has.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::json;

use super::config::ConfigFile;
use super::layers::Conv2d;
use super::single_file::header;
use super::weights::{Mapped, VariantPreference, Weights};
use crate::error::{Error, Result};

/// The most a TAESD may scale between latents and pictures (SD's is 8).
const MAX_SCALE: u64 = 64;

/// diffusers' `AutoencoderTiny` config, as far as encoding and decoding use it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaesdConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub latent_channels: usize,
    /// Width of every encoder stage (diffusers' `EncoderTiny` only works when all are equal).
    pub encoder_channels: usize,
    /// Residual blocks per encoder stage (1, 3, 3, 3 in the released models).
    pub encoder_blocks: Vec<usize>,
    pub decoder_channels: usize,
    /// Residual blocks per decoder stage (3, 3, 3, 1).
    pub decoder_blocks: Vec<usize>,
    /// The decoder's nearest-neighbour upsampling between stages (2).
    pub upsampling: usize,
    /// What diffusers' pipelines divide the latents by before decoding (1.0 for every
    /// released TAESD: it works on the UNet's latents as they are).
    pub scaling_factor: f64,
}

impl Default for TaesdConfig {
    /// The released taesd / taesdxl architecture (diffusers' defaults).
    fn default() -> Self {
        TaesdConfig {
            in_channels: 3,
            out_channels: 3,
            latent_channels: 4,
            encoder_channels: 64,
            encoder_blocks: vec![1, 3, 3, 3],
            decoder_channels: 64,
            decoder_blocks: vec![3, 3, 3, 1],
            upsampling: 2,
            scaling_factor: 1.0,
        }
    }
}

impl TaesdConfig {
    pub fn read(path: &Path) -> Result<TaesdConfig> {
        Self::from_config(&ConfigFile::read(path)?)
    }

    pub fn from_config(c: &ConfigFile) -> Result<TaesdConfig> {
        if let Some(class) = c.opt_str("_class_name")?
            && class != "AutoencoderTiny"
        {
            return Err(c.error(
                "_class_name",
                format!("`{class}` is not a tiny autoencoder (AutoencoderTiny)"),
            ));
        }
        c.require_default("act_fn", &[json!("relu")])?;
        c.require_default("upsample_fn", &[json!("nearest")])?;
        let d = TaesdConfig::default();
        let (encoder_channels, encoder_blocks) = stages(
            c,
            ("encoder_block_out_channels", "num_encoder_blocks"),
            (d.encoder_channels, &d.encoder_blocks),
        )?;
        let (decoder_channels, decoder_blocks) = stages(
            c,
            ("decoder_block_out_channels", "num_decoder_blocks"),
            (d.decoder_channels, &d.decoder_blocks),
        )?;
        let config = TaesdConfig {
            in_channels: c.usize_or("in_channels", d.in_channels)?,
            out_channels: c.usize_or("out_channels", d.out_channels)?,
            latent_channels: c.usize_or("latent_channels", d.latent_channels)?,
            encoder_channels,
            encoder_blocks,
            decoder_channels,
            decoder_blocks,
            upsampling: c.usize_or("upsampling_scaling_factor", d.upsampling)?,
            scaling_factor: c.f64_or("scaling_factor", d.scaling_factor)?,
        };
        // Every stage but the first scales by 2 (encoder) or the upsampling factor (decoder):
        // more than SD's 8 (up to 64) is refused before a decode could size pictures from it.
        let decoder_scale = (config.upsampling as u64).checked_pow(config.decoder_blocks.len() as u32 - 1);
        if decoder_scale.is_none_or(|s| s > MAX_SCALE) {
            return Err(c.error(
                "num_decoder_blocks",
                format!("with this upsampling, the decoder would enlarge more than {MAX_SCALE}×"),
            ));
        }
        if config.encoder_blocks.len() > 7 {
            return Err(c.error(
                "num_encoder_blocks",
                format!("the encoder would shrink pictures more than {MAX_SCALE}×"),
            ));
        }
        Ok(config)
    }

    /// Image pixels per latent pixel when decoding (8 for the released models).
    pub fn decoder_scale_factor(&self) -> usize {
        self.upsampling.pow(self.decoder_blocks.len() as u32 - 1)
    }

    /// Image pixels per latent pixel when encoding (each stage after the first halves).
    pub fn encoder_scale_factor(&self) -> usize {
        1 << (self.encoder_blocks.len() - 1)
    }
}

/// A stage list (widths and block counts) of the encoder or the decoder: diffusers' tiny
/// encoder and decoder keep one width through all stages (a stage's convolution is `w → w`),
/// so differing widths could never have been run, and are refused.
fn stages(c: &ConfigFile, (widths, blocks): (&str, &str), default: (usize, &[usize])) -> Result<(usize, Vec<usize>)> {
    let block_list = c.usize_list(blocks)?.unwrap_or_else(|| default.1.to_vec());
    let width_list = c
        .usize_list(widths)?
        .unwrap_or_else(|| vec![default.0; block_list.len()]);
    if width_list.len() != block_list.len() {
        return Err(c.error(
            widths,
            format!(
                "has {} entries but `{blocks}` has {}",
                width_list.len(),
                block_list.len()
            ),
        ));
    }
    if let Some(other) = width_list.iter().find(|&&w| w != width_list[0]) {
        return Err(c.error(
            widths,
            format!(
                "stages of {} and {other} channels: the tiny autoencoder keeps one width through all its stages",
                width_list[0]
            ),
        ));
    }
    Ok((width_list[0], block_list))
}

/// `relu(conv(relu(conv(relu(conv(x))))) + x)`: diffusers' `AutoencoderTinyBlock` (its
/// input and output widths are always equal, so the skip is the identity).
struct Block {
    convs: [Conv2d; 3],
}

impl Block {
    fn load(w: &Weights, channels: usize) -> Result<Block> {
        let conv = |i: usize| Conv2d::load(&w.pp("conv").pp(i), channels, channels, 3, 1, 1);
        Ok(Block {
            convs: [conv(0)?, conv(2)?, conv(4)?],
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.convs[0].forward(x)?.relu()?;
        let h = self.convs[1].forward(&h)?.relu()?;
        // The residual is added as the last convolution writes its output.
        Ok(self.convs[2].forward_fused(&h, None, Some(x))?.relu()?)
    }
}

/// One entry of diffusers' `nn.Sequential`.
enum Layer {
    Conv(Conv2d),
    Relu,
    Block(Block),
    /// Nearest-neighbour upsampling by this factor.
    Upsample(usize),
}

fn run(layers: &[Layer], mut x: Tensor) -> Result<Tensor> {
    for layer in layers {
        x = match layer {
            Layer::Conv(c) => c.forward(&x)?,
            Layer::Relu => x.relu()?,
            Layer::Block(b) => b.forward(&x)?,
            Layer::Upsample(k) => {
                let (_, _, h, w) = x.dims4()?;
                x.upsample_nearest2d(h * k, w * k)?
            }
        };
    }
    Ok(x)
}

/// Refuses weights with tensors under `prefix` that the architecture did not read: a file
/// made for another layout (more blocks, another variant) would otherwise load its first part
/// and decode nonsense.
fn check_all_read(w: &Weights, prefix: &str, read: usize) -> Result<()> {
    // In madebyollin's single-file layout every tensor of the file is this half's.
    let under = w.stored_names().filter(|n| n.starts_with(prefix)).count();
    let stored = if under > 0 { under } else { w.stored_names().count() };
    if stored > read {
        return Err(Error::weights(
            w.path(),
            format!(
                "{} tensors are left unread by a TAESD with this config: these weights are for another architecture",
                stored - read
            ),
        ));
    }
    Ok(())
}

/// The decoder: latents → RGB in about [−1, 1].
pub struct TaesdDecoder {
    config: TaesdConfig,
    layers: Vec<Layer>,
    dtype: DType,
}

impl TaesdDecoder {
    /// From weights in the diffusers layout (`decoder.layers.N.*`).
    pub fn load(w: &Weights, config: TaesdConfig) -> Result<TaesdDecoder> {
        let c = &config;
        let d = w.pp("decoder").pp("layers").tracked();
        let ch = c.decoder_channels;
        let mut layers = vec![
            Layer::Conv(Conv2d::load(&d.pp(0), c.latent_channels, ch, 3, 1, 1)?),
            Layer::Relu,
        ];
        let stages = c.decoder_blocks.len();
        for (i, &blocks) in c.decoder_blocks.iter().enumerate() {
            for _ in 0..blocks {
                layers.push(Layer::Block(Block::load(&d.pp(layers.len()), ch)?));
            }
            let at = if i + 1 < stages {
                layers.push(Layer::Upsample(c.upsampling));
                Conv2d::load_without_bias(&d.pp(layers.len()), ch, ch, 3, 1, 1)?
            } else {
                Conv2d::load(&d.pp(layers.len()), ch, c.out_channels, 3, 1, 1)?
            };
            layers.push(Layer::Conv(at));
        }
        check_all_read(w, "decoder.", d.registered_names().len())?;
        Ok(TaesdDecoder {
            dtype: w.compute_dtype(),
            config,
            layers,
        })
    }

    pub fn config(&self) -> &TaesdConfig {
        &self.config
    }

    /// `AutoencoderTiny.decode(z).sample`: [B, latent_channels, h, w] → [B, 3, 8h, 8w] f32,
    /// about [−1, 1], unclamped.
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let (_, c, _, _) = z.dims4()?;
        if c != self.config.latent_channels {
            return Err(Error::invalid(format!(
                "this TAESD decodes {}-channel latents, not {c}-channel ones",
                self.config.latent_channels
            )));
        }
        let x = z.to_dtype(self.dtype)?;
        // The decoder's soft clamp to (−3, 3).
        let x = ((x / 3.0)?.tanh()? * 3.0)?;
        let x = run(&self.layers, x)?;
        Ok(((x * 2.0)? - 1.0)?.to_dtype(DType::F32)?)
    }

    /// The picture of the UNet's latents, as diffusers' pipelines decode with a TAESD as
    /// their VAE: `decode(latents / scaling_factor)`.
    pub fn decode_latents(&self, latents: &Tensor) -> Result<Tensor> {
        let z = latents.to_dtype(DType::F32)?;
        if self.config.scaling_factor == 1.0 {
            return self.decode(&z);
        }
        self.decode(&(z / self.config.scaling_factor)?)
    }
}

/// The encoder: RGB in [−1, 1] → latents.
pub struct TaesdEncoder {
    config: TaesdConfig,
    layers: Vec<Layer>,
    dtype: DType,
}

impl TaesdEncoder {
    /// From weights in the diffusers layout (`encoder.layers.N.*`).
    pub fn load(w: &Weights, config: TaesdConfig) -> Result<TaesdEncoder> {
        let c = &config;
        let e = w.pp("encoder").pp("layers").tracked();
        let ch = c.encoder_channels;
        let mut layers = Vec::new();
        for (i, &blocks) in c.encoder_blocks.iter().enumerate() {
            let conv = if i == 0 {
                Conv2d::load(&e.pp(0), c.in_channels, ch, 3, 1, 1)?
            } else {
                Conv2d::load_without_bias(&e.pp(layers.len()), ch, ch, 3, 2, 1)?
            };
            layers.push(Layer::Conv(conv));
            for _ in 0..blocks {
                layers.push(Layer::Block(Block::load(&e.pp(layers.len()), ch)?));
            }
        }
        layers.push(Layer::Conv(Conv2d::load(
            &e.pp(layers.len()),
            ch,
            c.latent_channels,
            3,
            1,
            1,
        )?));
        check_all_read(w, "encoder.", e.registered_names().len())?;
        Ok(TaesdEncoder {
            dtype: w.compute_dtype(),
            config,
            layers,
        })
    }

    pub fn config(&self) -> &TaesdConfig {
        &self.config
    }

    /// `AutoencoderTiny.encode(image).latents`: [B, 3, H, W] in [−1, 1], H and W multiples of
    /// 8 → [B, latent_channels, H/8, W/8] f32.
    pub fn encode(&self, image: &Tensor) -> Result<Tensor> {
        let dims = image.dims();
        let [_, c, h, w] = dims else {
            return Err(Error::invalid(format!(
                "TAESD encodes a [batch, channels, height, width] image, not one of shape {dims:?}"
            )));
        };
        let f = self.config.encoder_scale_factor();
        if *c != self.config.in_channels || *h == 0 || *w == 0 || !h.is_multiple_of(f) || !w.is_multiple_of(f) {
            return Err(Error::invalid(format!(
                "TAESD encodes {}-channel pictures whose sides are non-zero multiples of {f}, not a {c}-channel {w}×{h} one",
                self.config.in_channels
            )));
        }
        let x = image.to_dtype(self.dtype)?;
        // [−1, 1] → [0, 1], the range TAESD was trained on.
        let x = ((x + 1.0)? / 2.0)?;
        Ok(run(&self.layers, x)?.to_dtype(DType::F32)?)
    }
}

/// Which half of a TAESD to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Encoder,
    Decoder,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Encoder => "encoder",
            Part::Decoder => "decoder",
        }
    }
}

/// The weights (in the diffusers layout) and config of one half of the TAESD at `path`: a
/// diffusers folder, or one of madebyollin's single files (`taesd_decoder.safetensors`; a
/// lone `diffusion_pytorch_model.safetensors` in the diffusers layout also works).
pub fn open(path: &Path, part: Part, dtype: DType, device: &Device) -> Result<(Weights, TaesdConfig)> {
    if path.is_dir() {
        let config = TaesdConfig::read(&path.join("config.json"))?;
        let prefer = if dtype == DType::F32 {
            VariantPreference::FullPrecision
        } else {
            VariantPreference::Fp16
        };
        let w = Weights::open(path, "diffusion_pytorch_model", prefer, dtype, device)?;
        return Ok((w, config));
    }
    if !path.exists() {
        return Err(Error::model(path, "TAESD file or folder does not exist"));
    }
    let head = header::read(path)?;
    let own = format!("{}.layers.0.weight", part.name());
    if head.has(&own) {
        let config = config_from_shapes(path, &head, &own, part)?;
        return Ok((Weights::from_files(&[path.to_path_buf()], dtype, device)?, config));
    }
    // madebyollin's layout: the encoder's `Sequential` starts with a conv (`0.weight`), the
    // decoder's with the clamp, so its first conv is `1.weight`.
    let (first, shift) = match part {
        Part::Encoder => ("0.weight", 0),
        Part::Decoder => ("1.weight", 1),
    };
    let is_other_half = match part {
        Part::Encoder => !head.has("0.weight") && head.has("1.weight"),
        Part::Decoder => head.has("0.weight"),
    };
    if is_other_half {
        let other = if part == Part::Decoder { "encoder" } else { "decoder" };
        return Err(Error::weights(
            path,
            format!(
                "this is a TAESD {other} file; the {} is the `*_{}.safetensors` beside it",
                part.name(),
                part.name()
            ),
        ));
    }
    if !head.has(first) {
        return Err(Error::weights(
            path,
            "not a TAESD file (no `decoder.layers.*` or madebyollin-layout tensors)",
        ));
    }
    let config = config_from_shapes(path, &head, first, part)?;
    let mut mapping = HashMap::new();
    for name in head.names() {
        let Some((index, rest)) = name.split_once('.') else {
            continue;
        };
        let Some(index) = index.parse::<usize>().ok().and_then(|i| i.checked_sub(shift)) else {
            continue;
        };
        mapping.insert(
            format!("{}.layers.{index}.{rest}", part.name()),
            Mapped::Same(name.to_string()),
        );
    }
    Ok((Weights::mapped(path, mapping, dtype, device)?, config))
}

/// A config-less file is the released architecture; its widths come from its first
/// convolution (`[width, latent or 3, 3, 3]`).
fn config_from_shapes(path: &Path, head: &header::Header, first: &str, part: Part) -> Result<TaesdConfig> {
    let shape = head.shape(first).unwrap_or_default();
    let [width, inputs, 3, 3] = *shape else {
        return Err(Error::weights(
            path,
            format!("`{first}` has shape {shape:?}, not a TAESD's first 3×3 convolution"),
        ));
    };
    let (_, max) = super::config::plausible_range("block_out_channels");
    if width == 0 || width > max || inputs == 0 || inputs > 1024 {
        return Err(Error::weights(
            path,
            format!("`{first}` has shape {shape:?}, not a plausible TAESD"),
        ));
    }
    let mut config = TaesdConfig::default();
    match part {
        Part::Decoder => {
            config.decoder_channels = width;
            config.latent_channels = inputs;
        }
        Part::Encoder => {
            config.encoder_channels = width;
            config.in_channels = inputs;
        }
    }
    Ok(config)
}

/// The decoder of the TAESD at `path` (see [`open`]).
pub fn load_decoder(path: &Path, dtype: DType, device: &Device) -> Result<TaesdDecoder> {
    let (w, config) = open(path, Part::Decoder, dtype, device)?;
    TaesdDecoder::load(&w, config)
}

/// The encoder of the TAESD at `path` (see [`open`]).
pub fn load_encoder(path: &Path, dtype: DType, device: &Device) -> Result<TaesdEncoder> {
    let (w, config) = open(path, Part::Encoder, dtype, device)?;
    TaesdEncoder::load(&w, config)
}

/// The TAESD a loaded model previews and draft-decodes with: none installed for its family,
/// ready, or found but unusable (a broken download, another latent space). An unusable one
/// never stops the model from loading: previews fall back to the linear approximation, and
/// only a Draft decode, which needs it, reports why.
pub enum ModelTaesd {
    Absent,
    Ready { path: PathBuf, decoder: TaesdDecoder },
    Unusable { path: PathBuf, problem: String },
}

impl ModelTaesd {
    /// Loads the decoder at `path` for a model whose latents have `latent_channels` channels
    /// and whose VAE enlarges `scale`×.
    pub fn load(
        path: Option<&Path>,
        dtype: DType,
        device: &Device,
        latent_channels: usize,
        scale: usize,
    ) -> ModelTaesd {
        let Some(path) = path else {
            return ModelTaesd::Absent;
        };
        let loaded = load_decoder(path, dtype, device).and_then(|decoder| {
            let c = decoder.config();
            if c.latent_channels != latent_channels || c.decoder_scale_factor() != scale {
                return Err(Error::model(
                    path,
                    format!(
                        "this TAESD decodes {}-channel latents {}× and the model makes {latent_channels}-channel latents its VAE enlarges {scale}×",
                        c.latent_channels,
                        c.decoder_scale_factor()
                    ),
                ));
            }
            Ok(decoder)
        });
        match loaded {
            Ok(decoder) => {
                tracing::info!(path = %path.display(), "TAESD loaded for previews and draft decodes");
                ModelTaesd::Ready {
                    path: path.to_path_buf(),
                    decoder,
                }
            }
            Err(e) => {
                tracing::warn!("TAESD not used: {e}");
                ModelTaesd::Unusable {
                    path: path.to_path_buf(),
                    problem: e.to_string(),
                }
            }
        }
    }

    pub fn decoder(&self) -> Option<&TaesdDecoder> {
        match self {
            ModelTaesd::Ready { decoder, .. } => Some(decoder),
            _ => None,
        }
    }

    /// The decoder, or why a Draft decode cannot run; `repo` is the Hub repo of the TAESD
    /// the model's family needs (madebyollin/taesd or madebyollin/taesdxl).
    pub fn require(&self, repo: &str) -> Result<&TaesdDecoder> {
        match self {
            ModelTaesd::Ready { decoder, .. } => Ok(decoder),
            ModelTaesd::Absent => Err(Error::invalid(format!(
                "Draft decode needs the tiny autoencoder for this model's family ({repo}); none is installed: get it with `lantern models download {repo}` or from the model manager"
            ))),
            ModelTaesd::Unusable { problem, .. } => Err(Error::invalid(format!(
                "Draft decode cannot use the TAESD found: {problem}"
            ))),
        }
    }
}
