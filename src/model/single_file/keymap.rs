//! LDM/CompVis names → diffusers names, from the original repositories' module layouts:
//! `ldm.modules.diffusionmodules.openaimodel.UNetModel` (`input_blocks`, `middle_block`,
//! `output_blocks`), `ldm.models.autoencoder.AutoencoderKL` (`encoder.down`, `decoder.up`,
//! `mid.block_1`/`attn_1`), transformers' CLIP under `cond_stage_model.transformer` and
//! OpenCLIP's text tower (`transformer.resblocks`, fused `attn.in_proj_*`, `text_projection`
//! stored [width, out]). Each entry says where a diffusers tensor lives in the file and how
//! to read it ([`Mapped`]); nothing is copied here.

use std::collections::HashMap;

use super::header::Header;
use crate::model::weights::Mapped;

/// The diffusers name of an LDM UNet tensor (`name` without `model.diffusion_model.`).
/// `lpb`: resnets per down block.
pub fn unet_name(name: &str, lpb: usize) -> Option<String> {
    let fixed = [
        ("time_embed.0.", "time_embedding.linear_1."),
        ("time_embed.2.", "time_embedding.linear_2."),
        ("label_emb.0.0.", "add_embedding.linear_1."),
        ("label_emb.0.2.", "add_embedding.linear_2."),
        ("input_blocks.0.0.", "conv_in."),
        ("out.0.", "conv_norm_out."),
        ("out.2.", "conv_out."),
    ];
    for (a, b) in fixed {
        if let Some(rest) = name.strip_prefix(a) {
            return Some(format!("{b}{rest}"));
        }
    }
    if let Some(rest) = name.strip_prefix("middle_block.") {
        let (j, rest) = rest.split_once('.')?;
        return match j {
            "0" => Some(format!("mid_block.resnets.0.{}", resnet(rest)?)),
            "1" => Some(format!("mid_block.attentions.0.{rest}")),
            "2" => Some(format!("mid_block.resnets.1.{}", resnet(rest)?)),
            _ => None,
        };
    }
    let (block, rest) = name.split_once('.')?;
    let (i, rest) = rest.split_once('.')?;
    let i: usize = i.parse().ok()?;
    let (j, rest) = rest.split_once('.')?;
    let j: usize = j.parse().ok()?;
    match block {
        "input_blocks" if i > 0 => {
            let (b, l) = ((i - 1) / (lpb + 1), (i - 1) % (lpb + 1));
            match (l < lpb, j) {
                (true, 0) => Some(format!("down_blocks.{b}.resnets.{l}.{}", resnet(rest)?)),
                (true, 1) => Some(format!("down_blocks.{b}.attentions.{l}.{rest}")),
                (false, 0) => Some(format!(
                    "down_blocks.{b}.downsamplers.0.conv.{}",
                    rest.strip_prefix("op.")?
                )),
                _ => None,
            }
        }
        "output_blocks" => {
            let (b, l) = (i / (lpb + 1), i % (lpb + 1));
            match j {
                0 => Some(format!("up_blocks.{b}.resnets.{l}.{}", resnet(rest)?)),
                1 | 2 if rest.starts_with("conv.") => Some(format!("up_blocks.{b}.upsamplers.0.{rest}")),
                1 => Some(format!("up_blocks.{b}.attentions.{l}.{rest}")),
                _ => None,
            }
        }
        _ => None,
    }
}

fn resnet(rest: &str) -> Option<String> {
    let map = [
        ("in_layers.0.", "norm1."),
        ("in_layers.2.", "conv1."),
        ("emb_layers.1.", "time_emb_proj."),
        ("out_layers.0.", "norm2."),
        ("out_layers.3.", "conv2."),
        ("skip_connection.", "conv_shortcut."),
    ];
    map.iter()
        .find_map(|(a, b)| rest.strip_prefix(a).map(|r| format!("{b}{r}")))
}

/// The diffusers name of an LDM VAE tensor (`name` without its prefix); `n_up`: decoder levels.
pub fn vae_name(name: &str, n_up: usize) -> Option<String> {
    if name.starts_with("quant_conv.") || name.starts_with("post_quant_conv.") {
        return Some(name.to_string());
    }
    let (part, rest) = name.split_once('.')?;
    if part != "encoder" && part != "decoder" {
        return None;
    }
    let res = |r: &str| r.replace("nin_shortcut.", "conv_shortcut.");
    let tail = if let Some(r) = rest.strip_prefix("norm_out.") {
        format!("conv_norm_out.{r}")
    } else if rest.starts_with("conv_in.") || rest.starts_with("conv_out.") {
        rest.to_string()
    } else if let Some(r) = rest.strip_prefix("mid.block_1.") {
        format!("mid_block.resnets.0.{}", res(r))
    } else if let Some(r) = rest.strip_prefix("mid.block_2.") {
        format!("mid_block.resnets.1.{}", res(r))
    } else if let Some(r) = rest.strip_prefix("mid.attn_1.") {
        let (layer, p) = r.split_once('.')?;
        let to = match layer {
            "norm" => "group_norm",
            "q" => "to_q",
            "k" => "to_k",
            "v" => "to_v",
            "proj_out" => "to_out.0",
            _ => return None,
        };
        format!("mid_block.attentions.0.{to}.{p}")
    } else if let Some(r) = rest.strip_prefix("down.") {
        let (i, r) = r.split_once('.')?;
        if let Some(r) = r.strip_prefix("block.") {
            let (j, r) = r.split_once('.')?;
            format!("down_blocks.{i}.resnets.{j}.{}", res(r))
        } else {
            format!(
                "down_blocks.{i}.downsamplers.0.conv.{}",
                r.strip_prefix("downsample.conv.")?
            )
        }
    } else if let Some(r) = rest.strip_prefix("up.") {
        let (i, r) = r.split_once('.')?;
        let i = n_up.checked_sub(1 + i.parse::<usize>().ok()?)?;
        if let Some(r) = r.strip_prefix("block.") {
            let (j, r) = r.split_once('.')?;
            format!("up_blocks.{i}.resnets.{j}.{}", res(r))
        } else {
            format!("up_blocks.{i}.upsamplers.0.conv.{}", r.strip_prefix("upsample.conv.")?)
        }
    } else {
        return None;
    };
    Some(format!("{part}.{tail}"))
}

/// UNet tensors under `unet.`.
pub fn unet(h: &Header, lpb: usize, out: &mut HashMap<String, Mapped>) {
    for name in h.names() {
        if let Some(rest) = name.strip_prefix(super::detect::UNET)
            && let Some(d) = unet_name(rest, lpb)
        {
            out.insert(format!("unet.{d}"), Mapped::Same(name.to_string()));
        }
    }
}

/// VAE tensors under `vae.`, from names starting with `prefix`. The mid-block attention's
/// 1×1 convolutions are read as linear weights.
pub fn vae(h: &Header, prefix: &str, out: &mut HashMap<String, Mapped>) {
    let n_up = h.indices(&format!("{prefix}decoder.up.")).len();
    for name in h.names() {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let Some(d) = vae_name(rest, n_up) else {
            continue;
        };
        let shape = h.shape(name).unwrap_or_default();
        let m = if d.contains(".attentions.0.to_") && d.ends_with(".weight") && shape.len() == 4 {
            Mapped::Reshaped(name.to_string(), vec![shape[0], shape[1]])
        } else {
            Mapped::Same(name.to_string())
        };
        out.insert(format!("vae.{d}"), m);
    }
}

/// transformers-CLIP tensors under `src` (`…transformer.`) → `dst.`, names unchanged.
pub fn clip(h: &Header, src: &str, dst: &str, out: &mut HashMap<String, Mapped>) {
    for name in h.names() {
        if let Some(rest) = name.strip_prefix(src) {
            out.insert(format!("{dst}.{rest}"), Mapped::Same(name.to_string()));
        }
    }
}

/// OpenCLIP text-tower tensors under `src` (`…model.`) → transformers names under `dst.`.
pub fn open_clip(h: &Header, src: &str, dst: &str, out: &mut HashMap<String, Mapped>) {
    let width = h
        .shape(&format!("{src}token_embedding.weight"))
        .and_then(|s| s.get(1).copied())
        .unwrap_or(0);
    let t = format!("{dst}.text_model");
    for name in h.names() {
        let Some(rest) = name.strip_prefix(src) else {
            continue;
        };
        let same = |d: String| (d, Mapped::Same(name.to_string()));
        let entries: Vec<(String, Mapped)> = match rest {
            "token_embedding.weight" => vec![same(format!("{t}.embeddings.token_embedding.weight"))],
            "positional_embedding" => vec![same(format!("{t}.embeddings.position_embedding.weight"))],
            "text_projection" => vec![(
                format!("{dst}.text_projection.weight"),
                Mapped::Transposed(name.to_string()),
            )],
            _ => {
                if let Some(r) = rest.strip_prefix("ln_final.") {
                    vec![same(format!("{t}.final_layer_norm.{r}"))]
                } else if let Some(r) = rest.strip_prefix("transformer.resblocks.") {
                    let Some((i, r)) = r.split_once('.') else {
                        continue;
                    };
                    let layer = format!("{t}.encoder.layers.{i}");
                    if let Some(kind) = r.strip_prefix("attn.in_proj_") {
                        ["q", "k", "v"]
                            .iter()
                            .enumerate()
                            .map(|(n, p)| {
                                (
                                    format!("{layer}.self_attn.{p}_proj.{kind}"),
                                    Mapped::Rows {
                                        name: name.to_string(),
                                        start: n * width,
                                        len: width,
                                    },
                                )
                            })
                            .collect()
                    } else {
                        let map = [
                            ("attn.out_proj.", "self_attn.out_proj."),
                            ("ln_1.", "layer_norm1."),
                            ("ln_2.", "layer_norm2."),
                            ("mlp.c_fc.", "mlp.fc1."),
                            ("mlp.c_proj.", "mlp.fc2."),
                        ];
                        let Some(d) = map
                            .iter()
                            .find_map(|(a, b)| r.strip_prefix(a).map(|x| format!("{layer}.{b}{x}")))
                        else {
                            continue;
                        };
                        vec![same(d)]
                    }
                } else {
                    continue;
                }
            }
        };
        out.extend(entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unet_names_follow_the_ldm_block_numbering() {
        // SD 1.5: 2 resnets per down block.
        let n = |s| unet_name(s, 2);
        assert_eq!(n("input_blocks.0.0.weight").as_deref(), Some("conv_in.weight"));
        assert_eq!(
            n("input_blocks.1.0.in_layers.0.weight").as_deref(),
            Some("down_blocks.0.resnets.0.norm1.weight")
        );
        assert_eq!(
            n("input_blocks.2.1.proj_in.weight").as_deref(),
            Some("down_blocks.0.attentions.1.proj_in.weight")
        );
        assert_eq!(
            n("input_blocks.3.0.op.weight").as_deref(),
            Some("down_blocks.0.downsamplers.0.conv.weight")
        );
        assert_eq!(
            n("input_blocks.4.0.skip_connection.bias").as_deref(),
            Some("down_blocks.1.resnets.0.conv_shortcut.bias")
        );
        assert_eq!(
            n("middle_block.2.out_layers.3.weight").as_deref(),
            Some("mid_block.resnets.1.conv2.weight")
        );
        assert_eq!(
            n("output_blocks.2.1.conv.weight").as_deref(),
            Some("up_blocks.0.upsamplers.0.conv.weight")
        );
        assert_eq!(
            n("output_blocks.5.2.conv.bias").as_deref(),
            Some("up_blocks.1.upsamplers.0.conv.bias")
        );
        assert_eq!(
            n("output_blocks.11.1.transformer_blocks.0.attn2.to_k.weight").as_deref(),
            Some("up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k.weight")
        );
        assert_eq!(n("label_emb.0.2.bias").as_deref(), Some("add_embedding.linear_2.bias"));
    }

    #[test]
    fn vae_names_reverse_the_decoder_levels() {
        assert_eq!(
            vae_name("decoder.up.3.block.0.conv1.weight", 4).as_deref(),
            Some("decoder.up_blocks.0.resnets.0.conv1.weight")
        );
        assert_eq!(
            vae_name("decoder.up.1.upsample.conv.bias", 4).as_deref(),
            Some("decoder.up_blocks.2.upsamplers.0.conv.bias")
        );
        assert_eq!(
            vae_name("decoder.mid.attn_1.proj_out.weight", 4).as_deref(),
            Some("decoder.mid_block.attentions.0.to_out.0.weight")
        );
        assert_eq!(
            vae_name("encoder.down.2.block.0.nin_shortcut.weight", 4).as_deref(),
            Some("encoder.down_blocks.2.resnets.0.conv_shortcut.weight")
        );
        assert_eq!(
            vae_name("decoder.norm_out.bias", 4).as_deref(),
            Some("decoder.conv_norm_out.bias")
        );
    }

    #[test]
    fn vae_encoder_names_keep_the_level_order() {
        let n = |s| vae_name(s, 4);
        let cases = [
            ("encoder.conv_in.weight", "encoder.conv_in.weight"),
            (
                "encoder.down.0.block.1.norm2.bias",
                "encoder.down_blocks.0.resnets.1.norm2.bias",
            ),
            (
                "encoder.down.1.downsample.conv.weight",
                "encoder.down_blocks.1.downsamplers.0.conv.weight",
            ),
            (
                "encoder.mid.block_1.conv1.bias",
                "encoder.mid_block.resnets.0.conv1.bias",
            ),
            (
                "encoder.mid.block_2.norm1.weight",
                "encoder.mid_block.resnets.1.norm1.weight",
            ),
            (
                "encoder.mid.attn_1.norm.bias",
                "encoder.mid_block.attentions.0.group_norm.bias",
            ),
            (
                "encoder.mid.attn_1.q.weight",
                "encoder.mid_block.attentions.0.to_q.weight",
            ),
            (
                "encoder.mid.attn_1.proj_out.bias",
                "encoder.mid_block.attentions.0.to_out.0.bias",
            ),
            ("encoder.norm_out.weight", "encoder.conv_norm_out.weight"),
            ("encoder.conv_out.bias", "encoder.conv_out.bias"),
            ("quant_conv.weight", "quant_conv.weight"),
        ];
        for (ldm, diffusers) in cases {
            assert_eq!(n(ldm).as_deref(), Some(diffusers), "{ldm}");
        }
        assert_eq!(n("encoder.down.1.upsample.conv.weight"), None);
    }
}
