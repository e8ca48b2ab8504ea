//! `unet/config.json` → the shape of a `UNet2DConditionModel`, with every field diffusers'
//! SD 1.x/2.x/XL/Turbo UNets use, and a clear error for the ones we do not implement.

use std::path::Path;

use serde_json::{Value, json};

use crate::error::Result;
use crate::model::config::ConfigFile;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownBlockKind {
    CrossAttn,
    Plain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MidBlockKind {
    CrossAttn,
    Plain,
    None,
}

/// SDXL's extra conditioning: pooled text embeddings and the six size/crop numbers.
#[derive(Clone, Debug)]
pub struct TextTimeConfig {
    pub addition_time_embed_dim: usize,
    pub projection_class_embeddings_input_dim: usize,
}

#[derive(Clone, Debug)]
pub struct UnetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub center_input_sample: bool,
    pub flip_sin_to_cos: bool,
    pub freq_shift: f64,
    pub down_blocks: Vec<DownBlockKind>,
    /// Up blocks in order of execution (deepest first), as the config lists them.
    pub up_blocks: Vec<DownBlockKind>,
    pub mid_block: MidBlockKind,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: Vec<usize>,
    pub downsample_padding: usize,
    pub mid_block_scale_factor: f64,
    pub norm_num_groups: usize,
    pub norm_eps: f64,
    pub cross_attention_dim: Vec<usize>,
    pub transformer_layers_per_block: Vec<usize>,
    /// Per up block, per resnet/attention pair (diffusers' `reverse_transformer_layers_per_block`).
    pub up_transformer_layers: Vec<Vec<usize>>,
    /// Heads per block (diffusers calls this `attention_head_dim`, a historical misnomer).
    pub heads: Vec<usize>,
    pub use_linear_projection: bool,
    pub upcast_attention: bool,
    pub time_embed_dim: usize,
    pub text_time: Option<TextTimeConfig>,
    pub sample_size: Option<usize>,
}

impl UnetConfig {
    pub fn read(path: &Path) -> Result<UnetConfig> {
        Self::from_config(&ConfigFile::read(path)?)
    }

    /// From a parsed config (a file's, or one built from a single-file checkpoint's shapes).
    pub fn from_config(c: &ConfigFile) -> Result<UnetConfig> {
        reject_unsupported(c)?;

        let down_types = c
            .str_list("down_block_types")?
            .unwrap_or_else(|| sd15_down().iter().map(|s| s.to_string()).collect());
        let up_types = c
            .str_list("up_block_types")?
            .unwrap_or_else(|| sd15_up().iter().map(|s| s.to_string()).collect());
        let n = down_types.len();
        if n == 0 {
            return Err(c.error("down_block_types", "must not be empty"));
        }
        if up_types.len() != n {
            return Err(c.error(
                "up_block_types",
                format!("has {} entries, down_block_types has {n}", up_types.len()),
            ));
        }
        let down_blocks = down_types
            .iter()
            .map(|t| match t.as_str() {
                "CrossAttnDownBlock2D" => Ok(DownBlockKind::CrossAttn),
                "DownBlock2D" => Ok(DownBlockKind::Plain),
                other => Err(c.error(
                    "down_block_types",
                    format!("block type `{other}` is not supported (CrossAttnDownBlock2D, DownBlock2D)"),
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        let up_blocks = up_types
            .iter()
            .map(|t| match t.as_str() {
                "CrossAttnUpBlock2D" => Ok(DownBlockKind::CrossAttn),
                "UpBlock2D" => Ok(DownBlockKind::Plain),
                other => Err(c.error(
                    "up_block_types",
                    format!("block type `{other}` is not supported (CrossAttnUpBlock2D, UpBlock2D)"),
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        let mid_block = match c.raw("mid_block_type") {
            None if c.json.get("mid_block_type").is_some() => MidBlockKind::None,
            None => MidBlockKind::CrossAttn,
            Some(Value::String(s)) if s == "UNetMidBlock2DCrossAttn" => MidBlockKind::CrossAttn,
            Some(Value::String(s)) if s == "UNetMidBlock2D" => MidBlockKind::Plain,
            Some(v) => {
                return Err(c.error(
                    "mid_block_type",
                    format!("{v} is not supported (UNetMidBlock2DCrossAttn, UNetMidBlock2D)"),
                ));
            }
        };

        let block_out_channels = c
            .usize_list("block_out_channels")?
            .unwrap_or_else(|| vec![320, 640, 1280, 1280]);
        if block_out_channels.len() != n {
            return Err(c.error(
                "block_out_channels",
                format!("has {} entries, down_block_types has {n}", block_out_channels.len()),
            ));
        }
        let norm_num_groups = c.usize_or("norm_num_groups", 32)?;
        if norm_num_groups == 0 {
            return Err(c.error("norm_num_groups", "must be positive (null is not supported)"));
        }
        if let Some(bad) = block_out_channels
            .iter()
            .find(|&&ch| ch == 0 || ch % norm_num_groups != 0)
        {
            return Err(c.error(
                "norm_num_groups",
                format!("{norm_num_groups} groups do not divide {bad} channels"),
            ));
        }
        let layers_per_block = c.per_block("layers_per_block", n, Some(2))?;
        let cross_attention_dim = c.per_block("cross_attention_dim", n, Some(1280))?;
        let transformer_layers_per_block = c.per_block("transformer_layers_per_block", n, Some(1))?;
        let heads = c.per_block("attention_head_dim", n, Some(8))?;
        for (i, (&h, &ch)) in heads.iter().zip(&block_out_channels).enumerate() {
            let cross_attn =
                down_blocks[i] == DownBlockKind::CrossAttn || up_blocks[n - 1 - i] == DownBlockKind::CrossAttn;
            if cross_attn && (h == 0 || ch % h != 0) {
                return Err(c.error("attention_head_dim", format!("{h} heads do not divide {ch} channels")));
            }
        }
        let up_transformer_layers = up_transformer_layers(c, &transformer_layers_per_block, &layers_per_block)?;

        let time_embed_dim = c.opt_usize("time_embedding_dim")?.unwrap_or(block_out_channels[0] * 4);
        let text_time = match c.opt_str("addition_embed_type")? {
            None => None,
            Some("text_time") => Some(TextTimeConfig {
                addition_time_embed_dim: c.usize_req("addition_time_embed_dim")?,
                projection_class_embeddings_input_dim: c.usize_req("projection_class_embeddings_input_dim")?,
            }),
            Some(other) => {
                return Err(c.error(
                    "addition_embed_type",
                    format!("`{other}` is not supported (only text_time, SDXL)"),
                ));
            }
        };

        Ok(UnetConfig {
            in_channels: c.usize_or("in_channels", 4)?,
            out_channels: c.usize_or("out_channels", 4)?,
            center_input_sample: c.bool_or("center_input_sample", false)?,
            flip_sin_to_cos: c.bool_or("flip_sin_to_cos", true)?,
            freq_shift: c.f64_or("freq_shift", 0.0)?,
            down_blocks,
            up_blocks,
            mid_block,
            block_out_channels,
            layers_per_block,
            downsample_padding: c.usize_or("downsample_padding", 1)?,
            mid_block_scale_factor: c.f64_or("mid_block_scale_factor", 1.0)?,
            norm_num_groups,
            norm_eps: c.f64_or("norm_eps", 1e-5)?,
            cross_attention_dim,
            transformer_layers_per_block,
            up_transformer_layers,
            heads,
            use_linear_projection: c.bool_or("use_linear_projection", false)?,
            upcast_attention: c.bool_or("upcast_attention", false)?,
            time_embed_dim,
            text_time,
            sample_size: c.opt_usize("sample_size").ok().flatten(),
        })
    }

    /// How many times the UNet halves the latent (the number of downsamplers).
    pub fn num_upsamplers(&self) -> usize {
        self.block_out_channels.len() - 1
    }

    /// The text embedding width the UNet's cross-attention expects (the last block's).
    pub fn context_dim(&self) -> usize {
        *self.cross_attention_dim.last().expect("non-empty")
    }
}

fn up_transformer_layers(c: &ConfigFile, per_block: &[usize], layers_per_block: &[usize]) -> Result<Vec<Vec<usize>>> {
    let n = per_block.len();
    let field = "reverse_transformer_layers_per_block";
    match c.raw(field) {
        None => Ok((0..n)
            .map(|i| vec![per_block[n - 1 - i]; layers_per_block[n - 1 - i] + 1])
            .collect()),
        Some(Value::Array(blocks)) if blocks.len() == n => blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let resnets = layers_per_block[n - 1 - i] + 1;
                match b {
                    Value::Array(xs) if xs.len() == resnets => xs.iter().map(|x| c.int(field, x)).collect(),
                    x if x.is_number() => Ok(vec![c.int(field, x)?; resnets]),
                    other => Err(c.error(field, format!("entry {i} should list {resnets} integers, got {other}"))),
                }
            })
            .collect(),
        Some(v) => Err(c.error(field, format!("expected a list with one entry per up block, got {v}"))),
    }
}

/// Fields whose non-default values change the architecture in ways we do not implement.
fn reject_unsupported(c: &ConfigFile) -> Result<()> {
    let null = || vec![Value::Null];
    c.require_default("num_attention_heads", &null())?;
    c.require_default("class_embed_type", &null())?;
    c.require_default("num_class_embeds", &null())?;
    c.require_default("encoder_hid_dim", &null())?;
    c.require_default("encoder_hid_dim_type", &null())?;
    c.require_default("time_cond_proj_dim", &null())?;
    c.require_default("timestep_post_act", &null())?;
    c.require_default("time_embedding_act_fn", &null())?;
    c.require_default("cross_attention_norm", &null())?;
    c.require_default("dual_cross_attention", &[json!(false)])?;
    c.require_default("mid_block_only_cross_attention", &[json!(false), Value::Null])?;
    c.require_default("class_embeddings_concat", &[json!(false)])?;
    c.require_default("resnet_skip_time_act", &[json!(false)])?;
    c.require_default("resnet_out_scale_factor", &[json!(1.0), json!(1)])?;
    c.require_default("resnet_time_scale_shift", &[json!("default")])?;
    c.require_default("time_embedding_type", &[json!("positional")])?;
    c.require_default("act_fn", &[json!("silu")])?;
    c.require_default("conv_in_kernel", &[json!(3)])?;
    c.require_default("conv_out_kernel", &[json!(3)])?;
    c.require_default("attention_type", &[json!("default")])?;
    match c.raw("only_cross_attention") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Array(a)) if a.iter().all(|x| x == &json!(false)) => {}
        Some(v) => {
            return Err(c.error("only_cross_attention", format!("{v} is not supported (only false)")));
        }
    }
    Ok(())
}

fn sd15_down() -> [&'static str; 4] {
    [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ]
}

fn sd15_up() -> [&'static str; 4] {
    [
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ]
}
