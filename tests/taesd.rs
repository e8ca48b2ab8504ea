//! TAESD (diffusers' `AutoencoderTiny`) against diffusers on the tiny random-weight fixtures of
//! `tools/make_taesd_fixtures.py`: the decoder on two latents (one well into its tanh clamp) and
//! the encoder on two pictures, at every CPU kernel level this machine runs; madebyollin's
//! single-file layout equal to the diffusers folder; the released full-size layout loading;
//! refused input.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use lantern::model::cpu::simd;
use lantern::model::taesd::{self, TaesdConfig};
use lantern::model::vae_encoder::rgb8_to_tensor;
use lantern::pipeline::to_rgb8;
use support::*;

const MODELS: [&str; 2] = ["taesd-tiny", "taesdxl-tiny"];
const PICTURES: [(&str, usize, usize); 2] = [("square", 64, 64), ("wide", 72, 48)];

fn dir() -> PathBuf {
    fixtures().join("taesd")
}

fn refs() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir().join("refs.safetensors"), &Device::Cpu).unwrap()
}

fn picture(name: &str) -> Tensor {
    let img = read_png(&fixtures().join("vae_encoder").join(format!("{name}.png")));
    rgb8_to_tensor(img.width as usize, img.height as usize, &img.data, &Device::Cpu).unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

fn diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    max_abs(&(a - b).unwrap())
}

/// The largest difference of two pictures' 8-bit pixels, as diffusers post-processes them.
fn pixel_diff(a: &Tensor, b: &Tensor) -> u8 {
    let (a, b) = (to_rgb8(a).unwrap(), to_rgb8(b).unwrap());
    a.data.iter().zip(&b.data).map(|(x, y)| x.abs_diff(*y)).max().unwrap()
}

fn decoder(path: &Path) -> taesd::TaesdDecoder {
    taesd::load_decoder(path, DType::F32, &Device::Cpu).unwrap()
}

fn encoder(path: &Path) -> taesd::TaesdEncoder {
    taesd::load_encoder(path, DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn decoder_matches_diffusers_at_every_cpu_level() {
    let refs = refs();
    simd::for_each_level(|level| {
        for model in MODELS {
            let dec = decoder(&dir().join(model));
            assert_eq!(dec.config().decoder_channels, 16);
            for (key, (h, w)) in [("a", (64, 96)), ("b", (40, 72))] {
                let latents = &refs[&format!("latents.{key}")];
                let theirs = &refs[&format!("{model}.decoded.{key}")];
                let ours = dec.decode(latents).unwrap();
                assert_eq!(ours.dims(), [1, 3, h, w]);
                let d = diff(&ours, theirs);
                let scale = max_abs(theirs);
                let px = pixel_diff(&ours, theirs);
                println!(
                    "{level:?} {model} decoded.{key}: max abs diff {d:.2e} (largest value {scale:.2}), pixels {px}/255"
                );
                assert!(scale > 0.5, "a degenerate reference");
                assert!(d <= 1e-5 * scale.max(1.0), "{level:?} {model} {key}: {d}");
                assert!(px <= 1, "{level:?} {model} {key}: {px}/255");
                // The pipeline's entry point: these TAESDs' scaling factor is 1.
                assert_eq!(diff(&dec.decode_latents(latents).unwrap(), &ours), 0.0);
            }
        }
    });
}

#[test]
fn encoder_matches_diffusers_at_every_cpu_level() {
    let refs = refs();
    simd::for_each_level(|level| {
        for model in MODELS {
            let enc = encoder(&dir().join(model));
            assert_eq!(enc.config().encoder_channels, 12);
            for (name, w, h) in PICTURES {
                let theirs = &refs[&format!("{model}.encoded.{name}")];
                let ours = enc.encode(&picture(name)).unwrap();
                assert_eq!(ours.dims(), [1, 4, h / 8, w / 8]);
                let d = diff(&ours, theirs);
                let scale = max_abs(theirs);
                println!("{level:?} {model} encoded.{name}: max abs diff {d:.2e} (largest value {scale:.2})");
                assert!(scale > 0.5, "a degenerate reference");
                assert!(d <= 1e-5 * scale.max(1.0), "{level:?} {model} {name}: {d}");
            }
        }
    });
}

#[test]
fn madebyollin_single_files_decode_and_encode_as_the_folder() {
    let refs = refs();
    for (model, prefix) in [("taesd-tiny", "taesd"), ("taesdxl-tiny", "taesdxl")] {
        let folder = dir().join(model);
        let dec_file = folder.join(format!("{prefix}_decoder.safetensors"));
        let enc_file = folder.join(format!("{prefix}_encoder.safetensors"));
        let single = decoder(&dec_file);
        // No config comes with the file: widths from its first convolution.
        assert_eq!(single.config().decoder_channels, 16);
        assert_eq!(single.config().latent_channels, 4);
        let latents = &refs["latents.b"];
        let whole = decoder(&folder).decode(latents).unwrap();
        assert_eq!(diff(&single.decode(latents).unwrap(), &whole), 0.0, "{model}");
        let image = picture("wide");
        let whole = encoder(&folder).encode(&image).unwrap();
        assert_eq!(
            diff(&encoder(&enc_file).encode(&image).unwrap(), &whole),
            0.0,
            "{model}"
        );

        // Each file is one half, and says which when given as the other.
        let Err(e) = taesd::load_decoder(&enc_file, DType::F32, &Device::Cpu) else {
            panic!("an encoder file loaded as a decoder")
        };
        assert!(e.to_string().contains("encoder file"), "{e}");
        let Err(e) = taesd::load_encoder(&dec_file, DType::F32, &Device::Cpu) else {
            panic!("a decoder file loaded as an encoder")
        };
        assert!(e.to_string().contains("decoder file"), "{e}");
    }
}

#[test]
fn the_released_full_size_layout_loads_with_its_default_config() {
    #[derive(serde::Deserialize)]
    struct Layout {
        config: serde_json::Value,
        parameters: usize,
        tensors: HashMap<String, Vec<usize>>,
    }
    let layout: Layout =
        serde_json::from_str(&std::fs::read_to_string(dir().join("full_size_layout.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("taesd");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("config.json"), layout.config.to_string()).unwrap();
    let config = TaesdConfig::read(&folder.join("config.json")).unwrap();
    assert_eq!(
        config,
        TaesdConfig::default(),
        "diffusers' defaults are the released model's"
    );
    assert_eq!(config.decoder_scale_factor(), 8);
    assert_eq!(config.encoder_scale_factor(), 8);

    // Random weights of exactly that layout (He-scaled, so values stay finite and alive).
    let mut count = 0;
    let tensors: HashMap<String, Tensor> = layout
        .tensors
        .iter()
        .map(|(name, shape)| {
            count += shape.iter().product::<usize>();
            let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
            let std = (2.0 / fan_in as f64).sqrt() * 0.7;
            let t = Tensor::randn(0f32, std as f32, shape.as_slice(), &Device::Cpu).unwrap();
            (name.clone(), t)
        })
        .collect();
    assert_eq!(count, layout.parameters);
    assert!((2_400_000..2_500_000).contains(&count), "{count}");
    candle_core::safetensors::save(&tensors, folder.join("diffusion_pytorch_model.safetensors")).unwrap();

    let dec = decoder(&folder);
    let latents = Tensor::randn(0f32, 1.0, (1, 4, 4, 6), &Device::Cpu).unwrap();
    let image = dec.decode(&latents).unwrap();
    assert_eq!(image.dims(), [1, 3, 32, 48]);
    assert!(
        image
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.is_finite())
    );
    let enc = encoder(&folder);
    let back = enc.encode(&picture("wide")).unwrap();
    assert_eq!(back.dims(), [1, 4, 6, 9]);

    // A full-size config over the tiny fixture's weights: the shapes disagree, in one line.
    let mismatched = tmp.path().join("mismatched");
    std::fs::create_dir(&mismatched).unwrap();
    std::fs::write(mismatched.join("config.json"), layout.config.to_string()).unwrap();
    std::fs::copy(
        dir().join("taesd-tiny/diffusion_pytorch_model.safetensors"),
        mismatched.join("diffusion_pytorch_model.safetensors"),
    )
    .unwrap();
    let Err(e) = taesd::load_decoder(&mismatched, DType::F32, &Device::Cpu) else {
        panic!("mismatched shapes loaded")
    };
    let line = e.to_string();
    assert!(line.contains("shape") && !line.contains('\n'), "{line}");
}

#[test]
fn other_weights_give_other_pictures() {
    // The test can fail: the two fixtures' weights decode the same latents differently, far
    // beyond the tolerance the parity tests allow.
    let refs = refs();
    let latents = &refs["latents.a"];
    let wrong = decoder(&dir().join("taesdxl-tiny")).decode(latents).unwrap();
    let d = diff(&wrong, &refs["taesd-tiny.decoded.a"]);
    assert!(d > 0.1, "{d}");
    assert!(pixel_diff(&wrong, &refs["taesd-tiny.decoded.a"]) > 20);

    // One weight changed a little: still visibly different.
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("taesd");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(dir().join("taesd-tiny/config.json"), folder.join("config.json")).unwrap();
    rewrite_tensors(
        &dir().join("taesd-tiny/diffusion_pytorch_model.safetensors"),
        &folder.join("diffusion_pytorch_model.safetensors"),
        |name, t| match name {
            "decoder.layers.2.conv.2.weight" => (t * 1.2).unwrap(),
            _ => t,
        },
    );
    let changed = decoder(&folder).decode(latents).unwrap();
    let d = diff(&changed, &refs["taesd-tiny.decoded.a"]);
    assert!(d > 1e-3, "{d}");
}

/// Copies a safetensors file, passing each tensor through `f`.
fn rewrite_tensors(from: &Path, to: &Path, f: impl Fn(&str, Tensor) -> Tensor) {
    let tensors = candle_core::safetensors::load(from, &Device::Cpu).unwrap();
    let out: HashMap<String, Tensor> = tensors.into_iter().map(|(n, t)| (n.clone(), f(&n, t))).collect();
    candle_core::safetensors::save(&out, to).unwrap();
}

fn one_line_error<T>(r: lantern::Result<T>) -> String {
    let Err(e) = r else { panic!("expected an error") };
    let line = e.to_string();
    assert!(!line.contains('\n'), "{line}");
    line
}

#[test]
fn bad_files_and_configs_are_refused_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cpu = Device::Cpu;
    let copy = |name: &str| -> PathBuf {
        let folder = tmp.path().join(name);
        std::fs::create_dir(&folder).unwrap();
        for f in ["config.json", "diffusion_pytorch_model.safetensors"] {
            std::fs::copy(dir().join("taesd-tiny").join(f), folder.join(f)).unwrap();
        }
        folder
    };

    // Missing folder, missing weights, missing config.
    let line = one_line_error(taesd::load_decoder(&tmp.path().join("nope"), DType::F32, &cpu));
    assert!(line.contains("does not exist"), "{line}");
    let no_weights = copy("no-weights");
    std::fs::remove_file(no_weights.join("diffusion_pytorch_model.safetensors")).unwrap();
    let line = one_line_error(taesd::load_decoder(&no_weights, DType::F32, &cpu));
    assert!(line.contains("missing weight file"), "{line}");
    let no_config = copy("no-config");
    std::fs::remove_file(no_config.join("config.json")).unwrap();
    let line = one_line_error(taesd::load_decoder(&no_config, DType::F32, &cpu));
    assert!(line.contains("config"), "{line}");

    // A truncated weight file, as an interrupted download leaves it.
    let truncated = copy("truncated");
    let file = truncated.join("diffusion_pytorch_model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let line = one_line_error(taesd::load_decoder(&truncated, DType::F32, &cpu));
    assert!(line.contains("diffusion_pytorch_model.safetensors"), "{line}");
    let single = tmp.path().join("taesd_decoder.safetensors");
    let bytes = std::fs::read(dir().join("taesd-tiny/taesd_decoder.safetensors")).unwrap();
    std::fs::write(&single, &bytes[..bytes.len() - 100]).unwrap();
    let line = one_line_error(taesd::load_decoder(&single, DType::F32, &cpu));
    assert!(line.contains("taesd_decoder.safetensors"), "{line}");

    // Configs diffusers could not run, or that are not a TAESD.
    let edit = |name: &str, field: &str, value: serde_json::Value| -> PathBuf {
        let folder = copy(name);
        let path = folder.join("config.json");
        let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config[field] = value;
        std::fs::write(&path, config.to_string()).unwrap();
        folder
    };
    for (name, field, value, says) in [
        (
            "widths",
            "decoder_block_out_channels",
            serde_json::json!([16, 16, 32, 16]),
            "one width",
        ),
        ("act", "act_fn", serde_json::json!("silu"), "not supported"),
        (
            "class",
            "_class_name",
            serde_json::json!("AutoencoderKL"),
            "AutoencoderTiny",
        ),
        ("stages", "num_decoder_blocks", serde_json::json!([3, 3, 3]), "entries"),
        (
            "huge",
            "upsampling_scaling_factor",
            serde_json::json!(1_000_000),
            "plausible",
        ),
    ] {
        let folder = edit(name, field, value);
        let line = one_line_error(taesd::load_decoder(&folder, DType::F32, &cpu));
        assert!(line.contains(field) && line.contains(says), "{name}: {line}");
    }

    // Eight stages of ×2 would enlarge 128×.
    let deep = edit("deep", "num_decoder_blocks", serde_json::json!(vec![1; 8]));
    let path = deep.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["decoder_block_out_channels"] = serde_json::json!(vec![16; 8]);
    std::fs::write(&path, config.to_string()).unwrap();
    let line = one_line_error(taesd::load_decoder(&deep, DType::F32, &cpu));
    assert!(line.contains("enlarge more than 64"), "{line}");

    // Weights with more blocks than the config reads are another architecture.
    let more = copy("more");
    let file = more.join("diffusion_pytorch_model.safetensors");
    let mut tensors = candle_core::safetensors::load(&file, &cpu).unwrap();
    let extra = tensors["decoder.layers.18.weight"].clone();
    tensors.insert("decoder.layers.20.weight".into(), extra);
    candle_core::safetensors::save(&tensors, &file).unwrap();
    let line = one_line_error(taesd::load_decoder(&more, DType::F32, &cpu));
    assert!(line.contains("1 tensors are left unread"), "{line}");
    // The encoder does not mind the decoder's extra tensor.
    taesd::load_encoder(&more, DType::F32, &cpu).unwrap();

    // A file that is no TAESD at all.
    let unet = fixtures().join("sd1-tiny/unet/diffusion_pytorch_model.safetensors");
    let line = one_line_error(taesd::load_decoder(&unet, DType::F32, &cpu));
    assert!(line.contains("not a TAESD"), "{line}");

    // Input the networks cannot take.
    let dec = decoder(&dir().join("taesd-tiny"));
    let line = one_line_error(dec.decode(&Tensor::zeros((1, 16, 4, 4), DType::F32, &cpu).unwrap()));
    assert!(line.contains("4-channel"), "{line}");
    let enc = encoder(&dir().join("taesd-tiny"));
    let line = one_line_error(enc.encode(&Tensor::zeros((1, 3, 60, 64), DType::F32, &cpu).unwrap()));
    assert!(line.contains("multiples of 8"), "{line}");
}
