//! A single-file checkpoint's architecture, read from its tensor shapes, as the diffusers
//! `config.json` values the ordinary loaders take. What shapes cannot say (head counts,
//! activation, scaling factor, the scheduler, the native size) comes from the family's
//! standard settings in `assets/single_file_families.json`.
//!
//! Two rules stand in for numbers no shape holds: heads are `width / 64` for SD 2.x, SDXL and
//! every CLIP (8 per block for SD 1.x's UNet), falling back to 8-wide heads below 256 wide or
//! where 64 does not divide the width (no released model: their widths are 320 to 1536; the
//! tiny test fixtures are 16 to 64 wide with 8-wide heads); GroupNorm uses 32 groups unless 32 does
//! not divide every channel count, then the largest divisor of them all below 32.

use serde_json::{Value, json};

use super::detect::UNET;
use super::header::Header;

type R<T> = std::result::Result<T, String>;

fn dim(h: &Header, name: &str, axis: usize) -> R<usize> {
    h.shape(name)
        .and_then(|s| s.get(axis).copied())
        .ok_or_else(|| format!("tensor `{name}` is missing or has too few dimensions"))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// 32 groups when 32 divides every channel count, else the largest common divisor below 32.
pub fn norm_groups(channels: &[usize]) -> usize {
    let g = channels.iter().fold(0, |acc, &c| gcd(acc, c));
    (1..=32).rev().find(|&d| g.is_multiple_of(d)).unwrap_or(1)
}

/// Heads for a `width`-wide attention under the family's rule.
fn heads(width: usize, rule: &Value) -> usize {
    if let Some(n) = rule.get("heads").and_then(Value::as_u64) {
        return n as usize;
    }
    let head_dim = rule.get("head_dim").and_then(Value::as_u64).unwrap_or(64) as usize;
    // Released models are 320 wide or more; narrower ones are test-size models.
    if width >= 256 && width.is_multiple_of(head_dim) {
        width / head_dim
    } else if width.is_multiple_of(8) {
        width / 8
    } else {
        1
    }
}

/// The most transformer blocks any attention under `prefix` has (0: none).
fn depth(h: &Header, prefix: &str) -> usize {
    h.indices(&format!("{prefix}transformer_blocks."))
        .last()
        .map_or(0, |d| d + 1)
}

/// `unet/config.json` for the LDM UNet in `h`. `pooled`: the width of the pooled text
/// embedding (SDXL), to split `label_emb`'s input into pooled + six size embeddings.
pub fn unet(h: &Header, fam: &Value, pooled: Option<usize>) -> R<Value> {
    let u = |s: &str| format!("{UNET}{s}");
    let inputs = h.indices(&u("input_blocks."));
    let n_inputs = inputs.last().map_or(0, |i| i + 1);
    let downsamplers: Vec<usize> = inputs
        .iter()
        .copied()
        .filter(|i| h.has(&u(&format!("input_blocks.{i}.0.op.weight"))))
        .collect();
    let levels = downsamplers.len() + 1;
    if n_inputs < 2 || !(n_inputs - 1 - downsamplers.len()).is_multiple_of(levels) {
        return Err(format!(
            "the UNet's {n_inputs} input blocks do not form levels of equal depth"
        ));
    }
    let lpb = (n_inputs - 1 - downsamplers.len()) / levels;
    if lpb == 0 {
        return Err("the UNet has no resnets in its input blocks".into());
    }
    let mut channels = Vec::new();
    let mut down_types = Vec::new();
    let mut down_depths = Vec::new();
    for b in 0..levels {
        let i = 1 + b * (lpb + 1);
        channels.push(dim(h, &u(&format!("input_blocks.{i}.0.out_layers.3.weight")), 0)?);
        let attn = u(&format!("input_blocks.{i}.1."));
        if h.has(&format!("{attn}proj_in.weight")) {
            down_types.push("CrossAttnDownBlock2D");
            down_depths.push(depth(h, &attn).max(1));
        } else {
            down_types.push("DownBlock2D");
            down_depths.push(1);
        }
    }
    let mut up_types = Vec::new();
    let mut up_depths = Vec::new();
    for b in 0..levels {
        let mut per = Vec::new();
        let mut attn = false;
        for l in 0..=lpb {
            let a = u(&format!("output_blocks.{}.1.", b * (lpb + 1) + l));
            if h.has(&format!("{a}proj_in.weight")) {
                attn = true;
                per.push(depth(h, &a).max(1));
            } else {
                per.push(1);
            }
        }
        up_types.push(if attn { "CrossAttnUpBlock2D" } else { "UpBlock2D" });
        up_depths.push(per);
    }
    if !h.has(&u("middle_block.1.proj_in.weight")) {
        return Err("the UNet's middle block has no attention; only SD-style UNets are supported".into());
    }
    let mid_depth = depth(h, &u("middle_block.1.")).max(1);
    let context = dim(h, &u("middle_block.1.transformer_blocks.0.attn2.to_k.weight"), 1)?;
    let linear = h
        .shape(&u("middle_block.1.proj_in.weight"))
        .is_some_and(|s| s.len() == 2);
    // diffusers gives the middle block the last level's depth.
    let mut depths = down_depths.clone();
    if let Some(last) = depths.last_mut()
        && down_types[levels - 1] == "DownBlock2D"
    {
        *last = mid_depth;
    }
    if depths.last() != Some(&mid_depth) {
        return Err(format!(
            "the middle block has {mid_depth} transformer layers but the deepest level has {}",
            depths.last().copied().unwrap_or(0)
        ));
    }
    let rule = &fam["unet"];
    let head_counts: Vec<usize> = channels.iter().map(|&c| heads(c, rule)).collect();
    let mut c = json!({
        "_class_name": "UNet2DConditionModel",
        "in_channels": dim(h, &u("input_blocks.0.0.weight"), 1)?,
        "out_channels": dim(h, &u("out.2.weight"), 0)?,
        "block_out_channels": channels,
        "layers_per_block": lpb,
        "down_block_types": down_types,
        "up_block_types": up_types,
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "transformer_layers_per_block": depths,
        "reverse_transformer_layers_per_block": up_depths,
        "cross_attention_dim": context,
        "attention_head_dim": head_counts,
        "use_linear_projection": linear,
        "upcast_attention": rule["upcast_attention"],
        "norm_num_groups": norm_groups(&channels),
        "sample_size": rule["sample_size"],
        "time_embedding_dim": dim(h, &u("time_embed.0.weight"), 0)?,
    });
    if h.has(&u("label_emb.0.0.weight")) {
        let adm = dim(h, &u("label_emb.0.0.weight"), 1)?;
        // SDXL base: pooled text (1280) + 6 size/crop numbers × 256; the refiner has 5 (an
        // aesthetic score in place of the target size).
        let ids = fam["time_ids"].as_u64().unwrap_or(6) as usize;
        let per = match pooled {
            Some(p) if adm > p && (adm - p).is_multiple_of(ids) => (adm - p) / ids,
            _ if adm == 1280 + ids * 256 => 256,
            _ => {
                return Err(format!(
                    "cannot tell SDXL's size-embedding width from label_emb's {adm} inputs"
                ));
            }
        };
        c["addition_embed_type"] = json!("text_time");
        c["addition_time_embed_dim"] = json!(per);
        c["projection_class_embeddings_input_dim"] = json!(adm);
    }
    Ok(c)
}

/// `vae/config.json` for the LDM VAE under `prefix` (`first_stage_model.`, or `` for a
/// separate VAE file).
pub fn vae(h: &Header, prefix: &str, fam: &Value) -> R<Value> {
    let v = |s: &str| format!("{prefix}{s}");
    let ups = h.indices(&v("decoder.up."));
    if ups.is_empty() {
        return Err("the VAE has no decoder levels".into());
    }
    let channels = ups
        .iter()
        .map(|i| dim(h, &v(&format!("decoder.up.{i}.block.0.conv2.weight")), 0))
        .collect::<R<Vec<_>>>()?;
    let resnets = h.indices(&v("decoder.up.0.block.")).len();
    if resnets < 2 {
        return Err("the VAE's decoder levels have fewer than 2 resnets".into());
    }
    // The encoder's input width, when the file has an encoder (a decoder-only VAE decodes).
    let in_channels = match h.has(&v("encoder.conv_in.weight")) {
        true => dim(h, &v("encoder.conv_in.weight"), 1)?,
        false => 3,
    };
    Ok(json!({
        "_class_name": "AutoencoderKL",
        "block_out_channels": channels,
        "in_channels": in_channels,
        "layers_per_block": resnets - 1,
        "latent_channels": dim(h, &v("decoder.conv_in.weight"), 1)?,
        "out_channels": dim(h, &v("decoder.conv_out.weight"), 0)?,
        "norm_num_groups": norm_groups(&channels),
        "scaling_factor": fam["vae"]["scaling_factor"],
        "force_upcast": true,
        "use_post_quant_conv": h.has(&v("post_quant_conv.weight")),
        "use_quant_conv": h.has(&v("quant_conv.weight")),
        "mid_block_add_attention": h.has(&v("decoder.mid.attn_1.q.weight")),
    }))
}

/// The `config.json` of a transformers-CLIP text model whose tensors start with `src`
/// (`…transformer.`; with or without `text_model.`).
pub fn clip(h: &Header, src: &str, enc: &Value) -> R<Value> {
    let t = if h.has(&format!("{src}text_model.embeddings.token_embedding.weight")) {
        format!("{src}text_model.")
    } else {
        src.to_string()
    };
    let tok = format!("{t}embeddings.token_embedding.weight");
    let width = dim(h, &tok, 1)?;
    let layers = h.indices(&format!("{t}encoder.layers.")).len();
    Ok(json!({
        "vocab_size": dim(h, &tok, 0)?,
        "hidden_size": width,
        "intermediate_size": dim(h, &format!("{t}encoder.layers.0.mlp.fc1.weight"), 0)?,
        "num_hidden_layers": layers,
        "num_attention_heads": heads(width, &json!({"head_dim": 64})),
        "max_position_embeddings": dim(h, &format!("{t}embeddings.position_embedding.weight"), 0)?,
        "hidden_act": enc["hidden_act"],
        "layer_norm_eps": 1e-5,
        "eos_token_id": 2,
    }))
}

/// The `config.json` of OpenCLIP's text tower under `src` (`…model.`) as a transformers CLIP
/// text model: SD 2.x conditions on the penultimate layer, so its last resblock is left out
/// (`unused_last_layers`), as diffusers' SD 2 config does.
pub fn open_clip(h: &Header, src: &str, enc: &Value) -> R<Value> {
    let tok = format!("{src}token_embedding.weight");
    let width = dim(h, &tok, 1)?;
    let blocks = h.indices(&format!("{src}transformer.resblocks.")).len();
    let unused = enc.get("unused_last_layers").and_then(Value::as_u64).unwrap_or(0) as usize;
    if blocks <= unused {
        return Err(format!("the OpenCLIP text encoder has only {blocks} layers"));
    }
    let mut c = json!({
        "vocab_size": dim(h, &tok, 0)?,
        "hidden_size": width,
        "intermediate_size": dim(h, &format!("{src}transformer.resblocks.0.mlp.c_fc.weight"), 0)?,
        "num_hidden_layers": blocks - unused,
        "num_attention_heads": heads(width, &json!({"head_dim": 64})),
        "max_position_embeddings": dim(h, &format!("{src}positional_embedding"), 0)?,
        "hidden_act": enc["hidden_act"],
        "layer_norm_eps": 1e-5,
        "eos_token_id": 2,
    });
    if enc.get("projection").and_then(Value::as_bool) == Some(true) {
        c["projection_dim"] = json!(dim(h, &format!("{src}text_projection"), 1)?);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_32_unless_the_channels_cannot_take_them() {
        assert_eq!(norm_groups(&[320, 640, 1280, 1280]), 32);
        assert_eq!(norm_groups(&[128, 256, 512, 512]), 32);
        assert_eq!(norm_groups(&[32, 32, 48]), 16);
        assert_eq!(norm_groups(&[16, 32, 32, 32]), 16);
    }

    #[test]
    fn heads_follow_the_family_rule() {
        let sd2 = json!({"head_dim": 64});
        assert_eq!(heads(320, &sd2), 5);
        assert_eq!(heads(1280, &sd2), 20);
        assert_eq!(heads(1024, &sd2), 16);
        assert_eq!(heads(32, &sd2), 4);
        assert_eq!(heads(64, &sd2), 8);
        assert_eq!(heads(1280, &json!({"heads": 8})), 8);
    }
}
