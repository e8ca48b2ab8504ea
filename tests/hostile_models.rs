//! Model folders from strangers: a copy of a real fixture checkpoint with one config edited
//! the way a broken or malicious download would be. Each must be refused at load with one
//! line naming the component and the field; none may panic, abort or allocate wildly.

mod support;

use std::path::{Path, PathBuf};

use lantern::model::{LoadOptions, LoadedModel};
use serde_json::{Value, json};
use support::*;

/// A copy of fixture `family` in a temp dir (named so no assertion can match the path) with
/// `edit` applied to `component/config.json`.
fn hostile(family: &str, component: &str, edit: impl FnOnce(&mut Value)) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new().prefix("h-").tempdir().unwrap();
    let root = tmp.path().join("m");
    copy_dir(&fixtures().join(family), &root);
    let path = root.join(component).join("config.json");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    (tmp, root)
}

/// Loads the folder and returns its error line, checking it is one line naming `file` and,
/// where given, the field.
fn refused(root: &Path, file: &str, field: Option<&str>, expect: &str) -> String {
    let result = LoadedModel::load(root, LoadOptions::default(), &mut |_| {});
    let Err(e) = result else {
        panic!("accepted; expected an error containing {expect:?}")
    };
    let text = e.to_string();
    assert!(!text.contains('\n'), "not one line: {text}");
    assert!(text.contains(file), "does not name {file}: {text}");
    if let Some(field) = field {
        assert!(
            text.contains(&format!("field `{field}`")),
            "does not name `{field}`: {text}"
        );
    }
    assert!(text.contains(expect), "expected {expect:?} in: {text}");
    text
}

fn set(key: &str, value: Value) -> impl FnOnce(&mut Value) {
    let key = key.to_string();
    move |json| {
        json[key] = value;
    }
}

#[test]
fn the_unmodified_copy_loads() {
    // The harness itself: a copy without edits is a working model.
    let (_tmp, root) = hostile("sd1-tiny", "unet", |_| {});
    LoadedModel::load(&root, LoadOptions::default(), &mut |_| {}).unwrap();
}

// ---- components that disagree with each other (issue 15 item 2) ----

#[test]
fn a_vae_with_other_latent_channels_than_the_unet_is_refused() {
    let (_tmp, root) = hostile("sd1-tiny", "vae", set("latent_channels", json!(1)));
    refused(
        &root,
        "unet/config.json",
        Some("out_channels"),
        "is 4 but the VAE's latent_channels is 1",
    );
}

#[test]
fn a_unet_whose_output_is_not_a_latent_is_refused() {
    let (_tmp, root) = hostile("sd1-tiny", "unet", set("out_channels", json!(8)));
    refused(
        &root,
        "unet/config.json",
        Some("out_channels"),
        "is 8 but the VAE's latent_channels is 4",
    );
}

#[test]
fn a_wrong_middle_cross_attention_width_is_refused() {
    // Only the last entry used to be compared with the text encoder.
    let (_tmp, root) = hostile("sd1-tiny", "unet", set("cross_attention_dim", json!([32, 64, 32])));
    refused(
        &root,
        "unet/config.json",
        Some("cross_attention_dim"),
        "64 (entry 1) does not match the text encoder(s)' 32-wide embeddings",
    );
    // SDXL: the two encoders' widths concatenated (32 + 32).
    let (_tmp, root) = hostile("sdxl-tiny", "unet", set("cross_attention_dim", json!([64, 32, 64])));
    refused(&root, "unet/config.json", Some("cross_attention_dim"), "32 (entry 1)");
    // An entry of a block without cross-attention is not used, so it may differ (SDXL's first).
    let (_tmp, root) = hostile("sdxl-tiny", "unet", set("cross_attention_dim", json!([7, 64, 64])));
    LoadedModel::load(&root, LoadOptions::default(), &mut |_| {}).unwrap();
}

#[test]
fn sdxl_size_conditioning_must_match_the_second_encoder() {
    let (_tmp, root) = hostile("sdxl-tiny", "unet", set("addition_time_embed_dim", json!(16)));
    refused(
        &root,
        "unet/config.json",
        Some("projection_class_embeddings_input_dim"),
        "is 80 but text_encoder_2's projection_dim 32 + 6 × addition_time_embed_dim 16 makes 128",
    );
    let (_tmp, root) = hostile("sdxl-tiny", "text_encoder_2", set("projection_dim", json!(64)));
    refused(
        &root,
        "unet/config.json",
        Some("projection_class_embeddings_input_dim"),
        "projection_dim 64",
    );
}

#[test]
fn an_sdxl_unet_in_an_sd_pipeline_is_refused() {
    let (_tmp, root) = hostile("sd1-tiny", "unet", |j| {
        j["addition_embed_type"] = json!("text_time");
        j["addition_time_embed_dim"] = json!(8);
        j["projection_class_embeddings_input_dim"] = json!(80);
    });
    refused(
        &root,
        "unet/config.json",
        Some("addition_embed_type"),
        "StableDiffusionXLPipeline",
    );
}

#[test]
fn a_text_encoder_smaller_than_its_tokenizer_is_refused() {
    let (_tmp, root) = hostile("sd1-tiny", "text_encoder", set("vocab_size", json!(1000)));
    refused(
        &root,
        "text_encoder/config.json",
        Some("vocab_size"),
        "is 1000 but the tokenizer has",
    );
    let (_tmp, root) = hostile("sd1-tiny", "text_encoder", set("max_position_embeddings", json!(16)));
    refused(
        &root,
        "text_encoder/config.json",
        Some("max_position_embeddings"),
        "is 16 but the tokenizer makes 77-token windows",
    );
}

// ---- configs that disagree with their weights (issue 15 item 2) ----

#[test]
fn channels_larger_than_the_weights_are_refused_before_reading_them() {
    let (_tmp, root) = hostile("sd1-tiny", "vae", set("block_out_channels", json!([16, 32, 32, 4096])));
    refused(
        &root,
        "vae/diffusion_pytorch_model.safetensors",
        None,
        "has shape [32] but the config implies [4096]",
    );
    let (_tmp, root) = hostile("sd1-tiny", "unet", set("block_out_channels", json!([32, 32, 64])));
    refused(
        &root,
        "unet/diffusion_pytorch_model.safetensors",
        None,
        "but the config implies",
    );
    let (_tmp, root) = hostile("sd1-tiny", "text_encoder", set("intermediate_size", json!(4096)));
    refused(&root, "text_encoder/model.safetensors", None, "but the config implies");
}

#[test]
fn more_layers_than_the_weights_hold_is_a_missing_tensor() {
    let (_tmp, root) = hostile("sd1-tiny", "unet", set("layers_per_block", json!(3)));
    refused(
        &root,
        "unet/diffusion_pytorch_model.safetensors",
        None,
        "missing tensor",
    );
}

// ---- implausible values (issue 15 item 3) ----

fn implausible(family: &str, component: &str, field: &str, value: Value, expect: &str) {
    let (_tmp, root) = hostile(family, component, set(field, value));
    refused(&root, &format!("{component}/config.json"), Some(field), expect);
}

#[test]
fn absurd_counts_are_refused_before_allocating() {
    // 1e12 was taken as a count and a vector of that many entries aborted the process.
    implausible(
        "sd1-tiny",
        "unet",
        "layers_per_block",
        json!(1e12),
        "1000000000000 is not a plausible value",
    );
    implausible(
        "sd1-tiny",
        "unet",
        "layers_per_block",
        json!([2, 2, 1000000]),
        "not a plausible value",
    );
    implausible(
        "sdxl-tiny",
        "unet",
        "transformer_layers_per_block",
        json!(1u64 << 40),
        "not a plausible value",
    );
    implausible(
        "sdxl-tiny",
        "unet",
        "reverse_transformer_layers_per_block",
        json!([[1, 1], [1, 1], [9999, 1]]),
        "not a plausible value",
    );
    implausible(
        "sd1-tiny",
        "vae",
        "layers_per_block",
        json!(1e9),
        "not a plausible value",
    );
    implausible(
        "sd1-tiny",
        "text_encoder",
        "num_hidden_layers",
        json!(100000),
        "not a plausible value",
    );
}

#[test]
fn absurd_sizes_are_refused() {
    implausible(
        "sd1-tiny",
        "unet",
        "block_out_channels",
        json!([32, 32, 1e13]),
        "not a plausible value",
    );
    implausible(
        "sd1-tiny",
        "unet",
        "cross_attention_dim",
        json!(1 << 30),
        "not a plausible value",
    );
    implausible(
        "sd1-tiny",
        "vae",
        "latent_channels",
        json!(100000),
        "not a plausible value",
    );
    implausible(
        "sd1-tiny",
        "text_encoder",
        "hidden_size",
        json!(1 << 20),
        "not a plausible value",
    );
    implausible(
        "sd1-tiny",
        "text_encoder",
        "vocab_size",
        json!(1e12),
        "not a plausible value",
    );
    implausible(
        "sd1-tiny",
        "text_encoder",
        "max_position_embeddings",
        json!(1e9),
        "not a plausible value",
    );
    // More blocks than any image could be halved by.
    implausible(
        "sd1-tiny",
        "vae",
        "block_out_channels",
        json!(vec![16; 70]),
        "70 entries is not plausible",
    );
    let types = json!(vec!["DownBlock2D"; 40]);
    implausible(
        "sd1-tiny",
        "unet",
        "down_block_types",
        types,
        "40 entries is not plausible",
    );
}

#[test]
fn zero_sizes_are_refused() {
    implausible(
        "sd1-tiny",
        "unet",
        "attention_head_dim",
        json!(0),
        "must be at least 1, got 0",
    );
    implausible("sd1-tiny", "unet", "layers_per_block", json!(0), "must be at least 1");
    implausible("sd1-tiny", "unet", "in_channels", json!(0), "must be at least 1");
    implausible("sd1-tiny", "vae", "norm_num_groups", json!(0), "must be at least 1");
    implausible(
        "sd1-tiny",
        "vae",
        "block_out_channels",
        json!([16, 0, 32, 32]),
        "must be at least 1",
    );
    implausible(
        "sd1-tiny",
        "text_encoder",
        "num_attention_heads",
        json!(0),
        "must be at least 1",
    );
    implausible(
        "sd1-tiny",
        "text_encoder",
        "intermediate_size",
        json!(0),
        "must be at least 1",
    );
}

#[test]
fn padding_that_would_underflow_or_misalign_is_refused() {
    implausible(
        "sd1-tiny",
        "unet",
        "downsample_padding",
        json!(2),
        "not a plausible value (at most 1)",
    );
    // 0 is diffusers' hand-padded form and is valid.
    let (_tmp, root) = hostile("sd1-tiny", "unet", set("downsample_padding", json!(0)));
    LoadedModel::load(&root, LoadOptions::default(), &mut |_| {}).unwrap();
}

#[test]
fn negative_and_fractional_numbers_are_refused() {
    implausible(
        "sd1-tiny",
        "unet",
        "layers_per_block",
        json!(-1),
        "expected a non-negative integer, got -1",
    );
    implausible(
        "sd1-tiny",
        "unet",
        "in_channels",
        json!(4.5),
        "expected a non-negative integer, got 4.5",
    );
    implausible(
        "sd1-tiny",
        "vae",
        "latent_channels",
        json!("4"),
        "expected a non-negative integer",
    );
    implausible(
        "sd1-tiny",
        "unet",
        "norm_eps",
        json!(0.0),
        "not a plausible value (above 0",
    );
    implausible("sd1-tiny", "unet", "norm_eps", json!(-1e-5), "not a plausible value");
    implausible(
        "sd1-tiny",
        "vae",
        "scaling_factor",
        json!(-0.18),
        "not a plausible value",
    );
    implausible(
        "sd1-tiny",
        "text_encoder",
        "layer_norm_eps",
        json!(1e300),
        "not a plausible value",
    );
    implausible("sd1-tiny", "unet", "freq_shift", json!(1e300), "not a plausible value");
    // Integers written as floats (8.0) stay accepted, as diffusers accepts them.
    let (_tmp, root) = hostile("sd1-tiny", "unet", set("attention_head_dim", json!(8.0)));
    LoadedModel::load(&root, LoadOptions::default(), &mut |_| {}).unwrap();
}
