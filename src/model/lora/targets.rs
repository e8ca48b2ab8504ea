//! Which weight of the loaded model a LoRA layer patches.
//!
//! Every layout is matched by one rule: write the model's tensor names the way kohya does
//! (dots as `_`) and look the layer's name up among them. That resolves the `_` in kohya's
//! names without guessing which ones were dots. SDXL kohya files name UNet blocks the
//! original (SGM) way, `input_blocks_4_1_…`; those blocks are turned into diffusers' names with
//! the same LDM map the single-file loader uses, then looked up the same way.

use std::collections::HashMap;

use crate::model::single_file::keymap;

/// A part of the model a LoRA patches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The n-th text encoder (SDXL: 0 = CLIP-L, 1 = OpenCLIP-G).
    TextEncoder(usize),
    Unet,
}

/// The model's patchable tensor names per part, indexed by their kohya spelling.
pub struct Index {
    names: HashMap<(Part, String), String>,
    /// Resnets per UNet down block, for turning SGM block numbers into diffusers' blocks.
    layers_per_block: usize,
}

/// `a.b.c` → `a_b_c`; the text encoders' `text_model.` is dropped (files write it or not).
fn kohya_spelling(part: Part, name: &str) -> String {
    let spelled = name.replace('.', "_");
    match part {
        Part::TextEncoder(_) => spelled
            .strip_prefix("text_model_")
            .map(str::to_string)
            .unwrap_or(spelled),
        Part::Unet => spelled,
    }
}

impl Index {
    /// `names`: each part's tensor names (as the loaded modules read them).
    pub fn new(names: &[(Part, Vec<String>)], layers_per_block: usize) -> Index {
        let mut index = HashMap::new();
        for (part, list) in names {
            for name in list {
                if let Some(module) = name.strip_suffix(".weight") {
                    index.insert((*part, kohya_spelling(*part, module)), name.clone());
                }
            }
        }
        Index {
            names: index,
            layers_per_block,
        }
    }

    /// The part and tensor name a layer key patches, if the model has it.
    pub fn find(&self, key: &str) -> Option<(Part, String)> {
        let (part, module) = split_key(key)?;
        let module = peft_module(&module);
        let spelled = kohya_spelling(part, &module);
        if let Some(name) = self.names.get(&(part, spelled.clone())) {
            return Some((part, name.clone()));
        }
        if part == Part::Unet {
            let converted = sgm_to_diffusers(&spelled, self.layers_per_block)?;
            return self.names.get(&(part, converted)).map(|n| (part, n.clone()));
        }
        None
    }
}

/// The part a key names and the module path after its prefix.
fn split_key(key: &str) -> Option<(Part, String)> {
    const PREFIXES: [(&str, Part); 7] = [
        ("lora_unet_", Part::Unet),
        ("lora_te1_", Part::TextEncoder(0)),
        ("lora_te2_", Part::TextEncoder(1)),
        ("lora_te_", Part::TextEncoder(0)),
        ("unet.", Part::Unet),
        ("text_encoder_2.", Part::TextEncoder(1)),
        ("text_encoder.", Part::TextEncoder(0)),
    ];
    let key = key.strip_prefix("base_model.model.").unwrap_or(key);
    PREFIXES
        .iter()
        .find_map(|(prefix, part)| key.strip_prefix(prefix).map(|rest| (*part, rest.to_string())))
}

/// Older diffusers LoRAs attach to attention processors: `attn1.processor.to_q_lora` is
/// `attn1.to_q`, `to_out_lora` is `to_out.0`.
fn peft_module(module: &str) -> String {
    let Some((head, tail)) = module.split_once(".processor.") else {
        return module.to_string();
    };
    let tail = tail.strip_suffix("_lora").unwrap_or(tail);
    let tail = if tail == "to_out" { "to_out.0" } else { tail };
    format!("{head}.{tail}")
}

/// `input_blocks_4_1_transformer_blocks_0_attn1_to_q` (SGM, kohya spelling) → the diffusers
/// module in kohya spelling, `down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q`.
fn sgm_to_diffusers(spelled: &str, layers_per_block: usize) -> Option<String> {
    let (block, rest) = ["input_blocks_", "middle_block_", "output_blocks_"]
        .iter()
        .find_map(|b| spelled.strip_prefix(b).map(|r| (b.trim_end_matches('_'), r)))?;
    let number = |s: &str| -> Option<(usize, String)> {
        let (n, r) = s.split_once('_')?;
        Some((n.parse().ok()?, r.to_string()))
    };
    let (ldm_prefix, rest) = if block == "middle_block" {
        let (j, rest) = number(rest)?;
        (format!("middle_block.{j}."), rest)
    } else {
        let (i, rest) = number(rest)?;
        let (j, rest) = number(&rest)?;
        (format!("{block}.{i}.{j}."), rest)
    };
    // The resnet and sampler parts LDM names with dots inside; everything else (attention
    // blocks) keeps its path, which LDM and diffusers spell alike.
    const DOTTED: [(&str, &str); 6] = [
        ("in_layers_2", "in_layers.2"),
        ("out_layers_3", "out_layers.3"),
        ("emb_layers_1", "emb_layers.1"),
        ("skip_connection", "skip_connection"),
        ("op", "op"),
        ("conv", "conv"),
    ];
    const PLACEHOLDER: &str = "LANTERN_REST";
    let (ldm_rest, kept) = match DOTTED.iter().find(|(spelled, _)| rest == *spelled) {
        Some((_, dotted)) => (dotted.to_string(), None),
        None => (PLACEHOLDER.to_string(), Some(rest)),
    };
    let diffusers = keymap::unet_name(&format!("{ldm_prefix}{ldm_rest}.weight"), layers_per_block)?;
    let module = diffusers.strip_suffix(".weight")?;
    let module = match kept {
        Some(rest) => module.replace(PLACEHOLDER, &rest),
        None => module.to_string(),
    };
    Some(module.replace('.', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        let unet = [
            "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight",
            "down_blocks.1.attentions.0.proj_in.weight",
            "down_blocks.0.resnets.1.conv1.weight",
            "down_blocks.0.downsamplers.0.conv.weight",
            "mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0.weight",
            "up_blocks.1.resnets.2.conv_shortcut.weight",
            "up_blocks.0.upsamplers.0.conv.weight",
        ];
        let te = ["text_model.encoder.layers.3.self_attn.q_proj.weight"];
        let te2 = ["encoder.layers.3.mlp.fc1.weight"];
        Index::new(
            &[
                (Part::Unet, unet.map(String::from).to_vec()),
                (Part::TextEncoder(0), te.map(String::from).to_vec()),
                (Part::TextEncoder(1), te2.map(String::from).to_vec()),
            ],
            2,
        )
    }

    fn found(key: &str) -> Option<String> {
        index().find(key).map(|(part, name)| format!("{part:?} {name}"))
    }

    #[test]
    fn every_layout_finds_its_weight() {
        let q = "Unet down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight";
        for key in [
            "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q",
            "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
            "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora",
            // SGM: input block 1 + 3·1 + 0 = 4 with two resnets per block.
            "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q",
        ] {
            assert_eq!(found(key).as_deref(), Some(q), "{key}");
        }
        let te = "TextEncoder(0) text_model.encoder.layers.3.self_attn.q_proj.weight";
        for key in [
            "lora_te_text_model_encoder_layers_3_self_attn_q_proj",
            "lora_te1_text_model_encoder_layers_3_self_attn_q_proj",
            "text_encoder.text_model.encoder.layers.3.self_attn.q_proj",
        ] {
            assert_eq!(found(key).as_deref(), Some(te), "{key}");
        }
        let te2 = "TextEncoder(1) encoder.layers.3.mlp.fc1.weight";
        for key in [
            "lora_te2_text_model_encoder_layers_3_mlp_fc1",
            "text_encoder_2.text_model.encoder.layers.3.mlp.fc1",
        ] {
            assert_eq!(found(key).as_deref(), Some(te2), "{key}");
        }
    }

    #[test]
    fn sgm_resnets_samplers_and_middle_blocks() {
        for (key, name) in [
            (
                "lora_unet_input_blocks_2_0_in_layers_2",
                "down_blocks.0.resnets.1.conv1.weight",
            ),
            (
                "lora_unet_input_blocks_3_0_op",
                "down_blocks.0.downsamplers.0.conv.weight",
            ),
            (
                "lora_unet_middle_block_1_transformer_blocks_0_attn2_to_out_0",
                "mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0.weight",
            ),
            (
                "lora_unet_output_blocks_5_0_skip_connection",
                "up_blocks.1.resnets.2.conv_shortcut.weight",
            ),
            (
                "lora_unet_output_blocks_2_1_conv",
                "up_blocks.0.upsamplers.0.conv.weight",
            ),
            (
                "lora_unet_input_blocks_4_1_proj_in",
                "down_blocks.1.attentions.0.proj_in.weight",
            ),
        ] {
            assert_eq!(index().find(key).map(|f| f.1).as_deref(), Some(name), "{key}");
        }
    }

    #[test]
    fn keys_for_other_modules_match_nothing() {
        for key in [
            "lora_unet_not_a_block_0_to_q",
            "lora_unet_input_blocks_99_1_transformer_blocks_0_attn1_to_q",
            "lora_te2_text_model_encoder_layers_40_mlp_fc1",
            "something_else",
        ] {
            assert_eq!(found(key), None, "{key}");
        }
    }
}
