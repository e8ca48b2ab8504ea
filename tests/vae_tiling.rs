//! The tiled VAE decode that keeps large images within memory: same shape as a whole decode,
//! identical when one tile covers everything, diffusers' own tiled decode when tiled, no seams.

mod support;

use candle_core::{DType, Device, Tensor};
use lantern::model::vae::{TILE, TILE_ABOVE, TILE_OVERLAP};
use support::*;

fn latents(h: usize, w: usize) -> Tensor {
    Tensor::randn(0f32, 1f32, (1, 4, h, w), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
}

fn mean_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn one_tile_covering_everything_is_the_whole_decode() {
    let model = load_model("sd1-tiny");
    let z = latents(24, 16);
    let whole = model.vae.decode_whole(&z).unwrap();
    let tiled = model.vae.decode_tiled(&z, 32, 8).unwrap();
    assert_eq!(tiled.dims(), whole.dims());
    assert_eq!(mean_abs(&tiled, &whole), 0.0);
}

#[test]
fn tiled_decode_matches_diffusers_tiled_decode() {
    let model = load_model("sd1-tiny");
    let reference =
        candle_core::safetensors::load(fixtures().join("reference/vae_tiled/decode.safetensors"), &Device::Cpu)
            .unwrap();
    // 40×28 latents in 16-latent tiles with a quarter overlap: three rows by two columns,
    // the last ones partial, blended as diffusers' `AutoencoderKL.tiled_decode` blends them.
    let ours = model.vae.decode_tiled(&reference["latents"], 16, 4).unwrap();
    let theirs = &reference["tiled"];
    assert_eq!(ours.dims(), theirs.dims());
    let max = (&ours - theirs)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let whole = model.vae.decode_whole(&reference["latents"]).unwrap();
    println!(
        "tiled vs diffusers: max abs {max:.2e}; tiled vs whole: mean abs {:.3}",
        mean_abs(&ours, &whole)
    );
    // The images are in [-1, 1]: 3/255 of 8-bit output is 6/255 here.
    assert!(max <= 6.0 / 255.0, "max abs diff {max}");
}

#[test]
fn blended_seams_are_no_sharper_than_the_image_elsewhere() {
    let model = load_model("sd1-tiny");
    let z = latents(40, 40);
    let tiled = model.vae.decode_tiled(&z, 16, 4).unwrap();
    let img = tiled.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
    // Mean absolute jump between neighbouring columns, at each column boundary.
    let jump = |x: usize| -> f32 {
        let mut total = 0.0;
        for channel in &img {
            for row in channel {
                total += (row[x] - row[x - 1]).abs();
            }
        }
        total / (3 * img[0].len()) as f32
    };
    let width = img[0][0].len();
    let typical: f32 = (1..width).map(jump).sum::<f32>() / (width - 1) as f32;
    // Tiles start every (16 - 4) latent pixels = 96 image pixels.
    for seam in [96, 192] {
        assert!(
            jump(seam) < 3.0 * typical,
            "seam at column {seam}: {} vs typical {typical}",
            jump(seam)
        );
    }
}

#[test]
fn large_latents_are_decoded_in_tiles_automatically() {
    let model = load_model("sd1-tiny");
    let side = TILE_ABOVE + 8;
    let z = latents(side, side);
    let auto = model.vae.decode(&z).unwrap();
    let tiled = model.vae.decode_tiled(&z, TILE, TILE_OVERLAP).unwrap();
    assert_eq!(auto.dims(), &[1, 3, side * 8, side * 8]);
    assert_eq!(mean_abs(&auto, &tiled), 0.0);
}

/// The encoder's tiling: diffusers' `_tiled_encode` of a 320×224 picture in 128-pixel tiles with
/// a quarter overlap (three rows by two columns, the last partial), and one tile covering
/// everything equal to the whole encode.
#[test]
fn tiled_encode_matches_diffusers_tiled_encode() {
    let model = load_model("sd1-tiny");
    let encoder = model.load_vae_encoder().unwrap();
    let reference =
        candle_core::safetensors::load(fixtures().join("reference/vae_tiled/encode.safetensors"), &Device::Cpu)
            .unwrap();
    let picture = &reference["picture"];
    let ours = encoder.encode_tiled(picture, 128, 32).unwrap();
    let max_diff = |a: &Tensor, b: &Tensor| {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let (m, l) = (
        max_diff(&ours.mean, &reference["mean"]),
        max_diff(&ours.logvar, &reference["logvar"]),
    );
    let whole = encoder.encode(picture).unwrap();
    println!(
        "tiled encode vs diffusers: mean {m:.2e}, logvar {l:.2e}; tiled vs whole mean: {:.3}",
        mean_abs(&ours.mean, &whole.mean)
    );
    assert!(m < 1e-4 && l < 1e-4, "mean {m}, logvar {l}");
    // The tiles matter: a whole encode differs near the seams.
    assert!(mean_abs(&ours.mean, &whole.mean) > 1e-4);
    let one = encoder.encode_tiled(picture, 512, 128).unwrap();
    assert_eq!(mean_abs(&one.mean, &whole.mean), 0.0);
}
