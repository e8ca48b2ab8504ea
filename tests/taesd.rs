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
fn tensor_pixel_diff(a: &Tensor, b: &Tensor) -> u8 {
    pixel_diff(&to_rgb8(a).unwrap(), &to_rgb8(b).unwrap()).0
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
                let px = tensor_pixel_diff(&ours, theirs);
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
    assert!(tensor_pixel_diff(&wrong, &refs["taesd-tiny.decoded.a"]) > 20);

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

// ---------------------------------------------------------------------------------------
// In the pipeline: Draft decode against diffusers' pipelines with the TAESD as their VAE, the
// live preview, and a model without (or with a broken) TAESD.

use std::sync::atomic::AtomicBool;

use lantern::model::{LoadOptions, LoadedModel};
use lantern::output::RgbImage;
use lantern::pipeline::{Event, Request};
use lantern::recipe::{PromptSyntax, Recipe};
use lantern::schedulers::SamplerKind;

#[derive(serde::Deserialize)]
struct PipelineCase {
    file: String,
    model: String,
    taesd: String,
    height: u32,
    width: u32,
    guidance: f64,
    prompt: String,
    negative_prompt: Option<String>,
    steps: u32,
    latents: String,
}

fn pipeline_cases() -> Vec<PipelineCase> {
    #[derive(serde::Deserialize)]
    struct Cases {
        cases: Vec<PipelineCase>,
    }
    let text = std::fs::read_to_string(dir().join("pipeline/cases.json")).unwrap();
    serde_json::from_str::<Cases>(&text).unwrap().cases
}

fn load_with_taesd(model: &str, taesd: Option<PathBuf>) -> LoadedModel {
    let options = LoadOptions {
        taesd,
        ..LoadOptions::default()
    };
    LoadedModel::load(&fixtures().join(model), options, &mut |_| {}).unwrap()
}

fn case_request(case: &PipelineCase) -> Request {
    Request {
        init_latents: Some(load_latents(&case.latents)),
        ..Request::new(Recipe {
            prompt: case.prompt.clone(),
            negative_prompt: case.negative_prompt.clone().unwrap_or_default(),
            steps: case.steps,
            guidance: case.guidance,
            width: case.width,
            height: case.height,
            sampler: SamplerKind::Default,
            prompt_syntax: PromptSyntax::Plain,
            draft_decode: true,
            ..Recipe::default()
        })
    }
}

/// The pictures a request makes and the previews it sends, in order.
fn run_with_previews(model: &LoadedModel, req: &Request) -> lantern::Result<(Vec<RgbImage>, Vec<RgbImage>, usize)> {
    let cancel = AtomicBool::new(false);
    let (mut images, mut previews, mut steps) = (Vec::new(), Vec::new(), 0);
    lantern::pipeline::generate(model, req, &cancel, &mut |e| match e {
        Event::ImageReady(g) => images.push(g.image),
        Event::Preview { preview, .. } => previews.push(preview),
        Event::Step { .. } => steps += 1,
        _ => {}
    })?;
    Ok((images, previews, steps))
}

#[test]
fn draft_decode_matches_diffusers_pipelines_with_the_taesd_as_their_vae() {
    for case in pipeline_cases() {
        let reference = read_png(&dir().join("pipeline").join(&case.file));
        for taesd in [
            dir().join(&case.taesd),
            // madebyollin's single decoder file decodes the same.
            dir()
                .join(&case.taesd)
                .join(format!("{}_decoder.safetensors", case.taesd.trim_end_matches("-tiny"))),
        ] {
            let model = load_with_taesd(&case.model, Some(taesd.clone()));
            let generated = run_generated(&model, &case_request(&case));
            let (max, mean) = pixel_diff(&generated[0].image, &reference);
            println!("{} with {}: max {max}/255, mean {mean:.3}", case.file, taesd.display());
            assert!(max <= 3 && mean <= 0.5, "{}: max {max} mean {mean}", case.file);
            // The picture says how it was decoded.
            assert!(generated[0].params.draft_decode);
            let text = lantern::output::format_parameters(&generated[0].params);
            assert!(text.contains("VAE Decoder: TAESD"), "{text}");
            let back = lantern::output::parse_parameters(&text).unwrap();
            assert!(back.recipe.draft_decode);

            // The full VAE's picture of the same run differs (the test can fail).
            let full = Request {
                recipe: Recipe {
                    draft_decode: false,
                    ..case_request(&case).recipe
                },
                ..case_request(&case)
            };
            let vae = run_generated(&model, &full);
            assert!(pixel_diff(&vae[0].image, &reference).0 > 20, "{}", case.file);
            assert!(!lantern::output::format_parameters(&vae[0].params).contains("VAE Decoder"));
        }
    }
}

#[test]
fn previews_are_taesd_pictures_when_one_is_installed() {
    let case = &pipeline_cases()[0];
    let with = load_with_taesd(&case.model, Some(dir().join(&case.taesd)));
    // One step: the only preview is of the final latents, which Draft decode decodes too.
    let mut req = case_request(case);
    req.recipe.steps = 1;
    req.previews = true;
    let (images, previews, steps) = run_with_previews(&with, &req).unwrap();
    assert_eq!(
        (steps, previews.len()),
        (1, 1),
        "the first step always gets its preview"
    );
    assert_eq!((previews[0].width, previews[0].height), (case.width, case.height));
    assert_eq!(previews[0], images[0]);

    // Without a TAESD: the linear approximation, an eighth of the size, every step.
    let without = load_with_taesd(&case.model, None);
    req.recipe.steps = 3;
    req.recipe.draft_decode = false;
    let (_, previews, steps) = run_with_previews(&without, &req).unwrap();
    assert_eq!(previews.len(), steps);
    assert_eq!(
        (previews[0].width, previews[0].height),
        (case.width / 8, case.height / 8)
    );
}

#[test]
fn draft_decode_without_a_usable_taesd_is_refused_before_sampling() {
    let case = &pipeline_cases()[1];
    let req = case_request(case);
    let without = load_with_taesd(&case.model, None);
    let cancel = AtomicBool::new(false);
    let mut steps = 0;
    let err = lantern::pipeline::generate(&without, &req, &cancel, &mut |e| {
        if let Event::Step { .. } = e {
            steps += 1;
        }
    })
    .unwrap_err()
    .to_string();
    assert_eq!(steps, 0, "refused before sampling");
    assert!(err.contains("madebyollin/taesdxl") && !err.contains('\n'), "{err}");

    // A broken TAESD does not stop the model from loading; previews fall back to the linear
    // map, and Draft decode says what is wrong with it.
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("taesdxl_decoder.safetensors");
    std::fs::write(&broken, b"not a safetensors file").unwrap();
    let model = load_with_taesd(&case.model, Some(broken));
    let mut req2 = case_request(case);
    req2.recipe.draft_decode = false;
    req2.recipe.steps = 1;
    req2.previews = true;
    let (_, previews, _) = run_with_previews(&model, &req2).unwrap();
    assert_eq!(previews[0].width, case.width / 8);
    let err = run_with_previews(&model, &req).unwrap_err().to_string();
    assert!(
        err.contains("cannot use the TAESD") && err.contains("taesdxl_decoder.safetensors"),
        "{err}"
    );

    // A TAESD for another latent space (4 channels, the SD one, is fine; a 16-channel one is not).
    let sixteen = tmp.path().join("taesd16");
    std::fs::create_dir(&sixteen).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("taesd-tiny/config.json")).unwrap()).unwrap();
    config["latent_channels"] = serde_json::json!(16);
    std::fs::write(sixteen.join("config.json"), config.to_string()).unwrap();
    rewrite_tensors(
        &dir().join("taesd-tiny/diffusion_pytorch_model.safetensors"),
        &sixteen.join("diffusion_pytorch_model.safetensors"),
        |name, t| match name {
            "decoder.layers.0.weight" => Tensor::cat(&[&t, &t, &t, &t], 1).unwrap(),
            _ => t,
        },
    );
    taesd::load_decoder(&sixteen, DType::F32, &Device::Cpu).unwrap();
    let model = load_with_taesd(&case.model, Some(sixteen));
    let err = run_with_previews(&model, &req).unwrap_err().to_string();
    assert!(err.contains("16-channel latents"), "{err}");
}
