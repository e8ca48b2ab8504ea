//! The VAE encoder against diffusers' `AutoencoderKL.encode` (references from
//! `tools/make_vae_encoder_refs.py`): the posterior's scaled mean and log-variance for two
//! pictures on each tiny fixture, from diffusers folders, single-file checkpoints and a separate
//! `.vae.safetensors`; a round trip through the decoder; refused input.

mod support;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use lantern::model::vae_encoder::{VaeEncoder, rgb8_to_tensor};
use lantern::model::{LoadOptions, LoadedModel};
use support::*;

const PICTURES: [(&str, usize, usize); 2] = [("square", 64, 64), ("wide", 72, 48)];

fn picture(name: &str) -> Tensor {
    let img = read_png(&fixtures().join("vae_encoder").join(format!("{name}.png")));
    rgb8_to_tensor(img.width as usize, img.height as usize, &img.data, &Device::Cpu).unwrap()
}

fn references(model: &str) -> HashMap<String, Tensor> {
    let path = fixtures().join("vae_encoder").join(format!("{model}.safetensors"));
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

/// Our scaled mean and log-variance against the reference's, each within 1e-4 of the
/// reference's largest magnitude; returns the worst absolute difference.
fn compare(label: &str, encoder: &VaeEncoder, refs: &HashMap<String, Tensor>) -> f32 {
    let mut worst = 0f32;
    for (name, w, h) in PICTURES {
        let image = picture(name);
        assert_eq!(image.dims(), [1, 3, h, w]);
        let posterior = encoder.encode(&image).unwrap();
        let mean = encoder.scale_latents(&posterior.mean).unwrap();
        let direct = encoder.encode_mean(&image).unwrap();
        assert_eq!(max_abs(&(&direct - &mean).unwrap()), 0.0, "{label} {name}: encode_mean");
        for (what, ours) in [("mean", &mean), ("logvar", &posterior.logvar)] {
            let theirs = &refs[&format!("{name}.{what}")];
            assert_eq!(ours.dims(), [1, 4, h / 8, w / 8], "{label} {name} {what}");
            assert_eq!(ours.dims(), theirs.dims(), "{label} {name} {what}");
            let diff = max_abs(&(ours - theirs).unwrap());
            let scale = max_abs(theirs);
            println!("{label} {name} {what}: max abs diff {diff:.3e} (largest value {scale:.3})");
            assert!(scale > 1e-3, "{label} {name} {what}: a degenerate reference");
            assert!(
                diff <= 1e-4 * scale,
                "{label} {name} {what}: max abs diff {diff} of {scale}"
            );
            worst = worst.max(diff);
        }
    }
    worst
}

fn encoder_of(path: &Path, options: LoadOptions) -> (LoadedModel, VaeEncoder) {
    let model = LoadedModel::load(path, options, &mut |_| {}).unwrap();
    let encoder = model.load_vae_encoder().unwrap();
    (model, encoder)
}

#[test]
fn encoder_matches_diffusers_on_every_fixture() {
    for model in ["sd1-tiny", "sd2-tiny", "sdxl-tiny"] {
        let (loaded, encoder) = encoder_of(&fixtures().join(model), LoadOptions::default());
        assert_eq!(encoder.config().scaling_factor, loaded.vae.config().scaling_factor);
        let worst = compare(model, &encoder, &references(model));
        println!("{model}: worst {worst:.3e}");
    }
}

#[test]
fn single_file_checkpoints_encode_as_their_diffusers_twins() {
    for (family, twin) in [("sd1", "sd1-tiny"), ("sdxl", "sdxl-tiny")] {
        let path = fixtures()
            .join("single-file")
            .join(family)
            .join(format!("{twin}.safetensors"));
        let (_, encoder) = encoder_of(&path, LoadOptions::default());
        compare(&format!("single-file {family}"), &encoder, &references(twin));
    }
}

#[test]
fn a_separate_vae_file_or_folder_encodes_and_a_decoder_only_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let sd1 = fixtures().join("single-file/sd1/sd1-tiny.safetensors");
    let vae_path = tmp.path().join("tiny.vae.safetensors");
    rewrite_safetensors(&sd1, &vae_path, |n| {
        n.strip_prefix("first_stage_model.").map(str::to_string)
    });
    let options = LoadOptions {
        vae: Some(vae_path),
        ..LoadOptions::default()
    };
    let (_, encoder) = encoder_of(&fixtures().join("sd1-tiny"), options);
    compare("separate sd1 .vae.safetensors", &encoder, &references("sd1-tiny"));

    // A diffusers model folder lends its vae/ (sd2-tiny's VAE, read with sd2-tiny's scaling).
    let options = LoadOptions {
        vae: Some(fixtures().join("sd2-tiny")),
        ..LoadOptions::default()
    };
    let (_, encoder) = encoder_of(&fixtures().join("sd2-tiny"), options);
    compare("sd2-tiny as a VAE folder", &encoder, &references("sd2-tiny"));

    // Decoding needs no encoder; encoding says it has none.
    let decoder_only = tmp.path().join("decoder-only.vae.safetensors");
    rewrite_safetensors(&sd1, &decoder_only, |n| {
        let n = n.strip_prefix("first_stage_model.")?;
        (!n.starts_with("encoder.") && !n.starts_with("quant_conv.")).then(|| n.to_string())
    });
    let options = LoadOptions {
        vae: Some(decoder_only),
        ..LoadOptions::default()
    };
    let model = LoadedModel::load(&fixtures().join("sd1-tiny"), options, &mut |_| {}).unwrap();
    let Err(e) = model.load_vae_encoder() else {
        panic!("a VAE without an encoder gave an encoder")
    };
    assert!(e.to_string().contains("no encoder"), "{e}");
}

#[test]
fn encode_then_decode_gives_a_picture_of_the_same_size() {
    let model = load_model("sd1-tiny");
    let encoder = model.load_vae_encoder().unwrap();
    for (name, w, h) in PICTURES {
        let image = picture(name);
        let posterior = encoder.encode(&image).unwrap();
        // The pipeline's scaling and the decoder's unscaling are inverses.
        let scaled = encoder.encode_mean(&image).unwrap();
        let back = model.vae.unscale_latents(&scaled).unwrap();
        let drift = max_abs(&(&back - &posterior.mean).unwrap());
        assert!(drift <= 1e-6 * max_abs(&posterior.mean).max(1.0), "{name}: {drift}");
        // A non-trivial latent: not constant, and the variance is not the clamp's bound.
        let spread = max_abs(
            &posterior
                .mean
                .broadcast_sub(&posterior.mean.mean_all().unwrap())
                .unwrap(),
        );
        assert!(spread > 1e-4, "{name}: constant latents");
        let logvar: Vec<f32> = posterior.logvar.flatten_all().unwrap().to_vec1().unwrap();
        assert!(
            logvar.iter().all(|v| v.is_finite() && *v > -30.0 && *v < 20.0),
            "{name}"
        );

        let decoded = model.vae.decode_whole(&back).unwrap();
        assert_eq!(decoded.dims(), [1, 3, h, w], "{name}");
        let values: Vec<f32> = decoded.flatten_all().unwrap().to_vec1().unwrap();
        assert!(values.iter().all(|v| v.is_finite()), "{name}");
        // The tiny VAEs are random and reconstruct poorly, so no closeness to the input is
        // asserted; the picture made of it has the input's size.
        let rgb = lantern::pipeline::to_rgb8(&decoded).unwrap();
        assert_eq!((rgb.width as usize, rgb.height as usize), (w, h));
        let err = max_abs(&(&decoded - &image).unwrap());
        println!("{name}: round trip max abs error {err:.3} (random tiny VAE)");
    }
}

#[test]
fn sizes_that_are_not_multiples_of_eight_and_odd_shapes_are_refused() {
    let model = load_model("sd1-tiny");
    let encoder = model.load_vae_encoder().unwrap();
    let zeros = |shape: &[usize]| Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu).unwrap();
    for (shape, needle) in [
        (vec![1, 3, 60, 64], "multiples of 8"),
        (vec![1, 3, 64, 44], "multiples of 8"),
        (vec![1, 3, 0, 64], "multiples of 8"),
        (vec![1, 4, 64, 64], "3-channel"),
        (vec![3, 64, 64], "[batch, channels, height, width]"),
    ] {
        let Err(e) = encoder.encode(&zeros(&shape)) else {
            panic!("{shape:?} was encoded")
        };
        let text = e.to_string();
        assert!(text.contains(needle) && !text.contains('\n'), "{shape:?}: {text}");
    }
    // A 44×60 picture: the message names the size.
    let Err(e) = encoder.encode_mean(&zeros(&[1, 3, 60, 44])) else {
        panic!("encoded")
    };
    assert!(e.to_string().contains("44×60"), "{e}");
    assert!(rgb8_to_tensor(4, 4, &[0; 47], &Device::Cpu).is_err());
}
