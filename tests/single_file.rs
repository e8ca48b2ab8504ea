//! Single-file checkpoints (the original LDM layout) against diffusers' `from_single_file` on
//! the same bytes: the tiny fixtures written by `tools/make_single_file_fixtures.py`, loaded
//! with no config at all (the architecture from the shapes, the rest from the family). Plus
//! a separate VAE file, the model hash, the prediction override and every kind of bad file.

mod support;

use std::path::{Path, PathBuf};

use lantern::model::single_file::{Prediction, SingleFile};
use lantern::model::{LoadOptions, LoadedModel, ModelFolder, PipelineKind};
use support::*;

const MAX_ABS: u8 = 3;
const MAX_MEAN: f64 = 0.5;

fn file(family: &str) -> PathBuf {
    fixtures()
        .join("single-file")
        .join(family)
        .join(format!("{family}-tiny.safetensors"))
}

fn cases(family: &str) -> ReferenceSet {
    let path = fixtures()
        .join("single-file")
        .join(family)
        .join("reference")
        .join("cases.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn load(path: &Path, options: LoadOptions) -> lantern::Result<LoadedModel> {
    LoadedModel::load(path, options, &mut |_| {})
}

/// Every reference of `family` from `model`; returns the worst (max, mean).
fn compare(family: &str, model: &LoadedModel) -> (u8, f64) {
    let set = cases(family);
    let (mut worst_max, mut worst_mean) = (0u8, 0f64);
    for case in &set.cases {
        let ours = run(model, &request_for(case));
        let reference = read_png(
            &fixtures()
                .join("single-file")
                .join(family)
                .join("reference")
                .join(&case.file),
        );
        let (max, mean) = pixel_diff(&ours[0], &reference);
        worst_max = worst_max.max(max);
        worst_mean = worst_mean.max(mean);
        assert!(
            max <= MAX_ABS && mean <= MAX_MEAN,
            "{family} {}: max {max}, mean {mean:.3}",
            case.file
        );
    }
    println!(
        "{family} single file: {} cases, worst max abs {worst_max}/255, worst mean {worst_mean:.3}/255",
        set.cases.len()
    );
    (worst_max, worst_mean)
}

fn parity(family: &str) {
    let model = load(&file(family), LoadOptions::default()).unwrap();
    compare(family, &model);
}

#[test]
fn sd1_single_file_matches_diffusers() {
    parity("sd1");
}

#[test]
fn sd2_single_file_matches_diffusers() {
    parity("sd2");
}

#[test]
fn sdxl_single_file_matches_diffusers() {
    parity("sdxl");
}

#[test]
fn families_and_settings_come_from_the_file() {
    let sd1 = ModelFolder::open(&file("sd1")).unwrap();
    assert_eq!(sd1.kind, PipelineKind::StableDiffusion);
    assert_eq!(sd1.display_name(), "sd1-tiny");
    let sd2 = SingleFile::open(&file("sd2"), None).unwrap();
    assert_eq!(sd2.detected.family_id(), "sd2-v");
    assert_eq!(sd2.scheduler_config()["prediction_type"], "v_prediction");
    // The unused last OpenCLIP layer is left out, as SD 2.x's config does.
    assert_eq!(sd2.text_configs().unwrap()[0].num_hidden_layers, 3);
    let eps = SingleFile::open(&file("sd2"), Some(Prediction::Epsilon)).unwrap();
    assert_eq!(eps.scheduler_config()["prediction_type"], "epsilon");
    assert_eq!(eps.scheduler_config()["_class_name"], "PNDMScheduler");
    let xl = ModelFolder::open(&file("sdxl")).unwrap();
    assert_eq!(xl.kind, PipelineKind::StableDiffusionXl);
    assert_eq!(xl.tokenizers().unwrap().len(), 2);
    // Turbo and 512-base are told by the name (the weights are shaped like their bases').
    let tmp = tempfile::tempdir().unwrap();
    for (src, name, id, class) in [
        (
            "sdxl",
            "sdxl_turbo_1.0.safetensors",
            "sdxl-turbo",
            "EulerAncestralDiscreteScheduler",
        ),
        ("sd2", "sd_turbo.safetensors", "sd-turbo", "EulerDiscreteScheduler"),
        ("sd2", "v2-1_512-ema-pruned.safetensors", "sd2", "PNDMScheduler"),
    ] {
        let p = tmp.path().join(name);
        std::fs::copy(file(src), &p).unwrap();
        let f = SingleFile::open(&p, None).unwrap();
        assert_eq!(f.detected.family_id(), id, "{name}");
        assert_eq!(f.scheduler_config()["_class_name"], class, "{name}");
        assert_eq!(f.scheduler_config()["prediction_type"], "epsilon", "{name}");
    }
    // The shapes give the fixture folders' own architecture.
    let ours = SingleFile::open(&file("sdxl"), None).unwrap().unet_config().unwrap();
    let theirs = lantern::model::unet::UnetConfig::read(&fixtures().join("sdxl-tiny/unet/config.json")).unwrap();
    assert_eq!(ours.block_out_channels, theirs.block_out_channels);
    assert_eq!(ours.transformer_layers_per_block, theirs.transformer_layers_per_block);
    assert_eq!(ours.heads[1..], theirs.heads[1..]);
    assert_eq!(ours.norm_num_groups, theirs.norm_num_groups);
}

#[test]
fn the_model_hash_is_a1111s_sha256_prefix_and_the_name_the_stem() {
    use sha2::{Digest, Sha256};
    let tmp = tempfile::tempdir().unwrap();
    // SAFETY: set before any thread of this test reads the environment; the hash cache then
    // goes to this test's own folder.
    unsafe { std::env::set_var("LANTERN_DATA_DIR", tmp.path()) };
    let path = file("sd1");
    let digest = Sha256::digest(std::fs::read(&path).unwrap());
    let expected: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    let model = load(&path, LoadOptions::default()).unwrap();
    assert_eq!(model.hash, expected);
    assert_eq!(model.name(), "sd1-tiny");
    // Cached: a second computation reads the cache, keyed by path, size and mtime.
    assert!(tmp.path().join("model-hashes.json").is_file());
    assert_eq!(lantern::model::single_file::hash::model_hash(&path).unwrap(), expected);
    // What restoring a picture asks: known once hashed, and never computed for it.
    let dtype = candle_core::DType::F32;
    assert_eq!(lantern::model::known_model_hash(&path, dtype), Some(expected));
    let copy = tmp.path().join("never-hashed.safetensors");
    std::fs::copy(&path, &copy).unwrap();
    assert_eq!(lantern::model::known_model_hash(&copy, dtype), None);
}

#[test]
fn a_separate_vae_file_replaces_a_missing_vae_and_missing_parts_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let model_path = tmp.path().join("novae.safetensors");
    let vae_path = tmp.path().join("tiny.vae.safetensors");
    rewrite_safetensors(&file("sd1"), &model_path, |n| {
        (!n.starts_with("first_stage_model.")).then(|| n.to_string())
    });
    rewrite_safetensors(&file("sd1"), &vae_path, |n| {
        n.strip_prefix("first_stage_model.").map(str::to_string)
    });
    let Err(e) = load(&model_path, LoadOptions::default()) else {
        panic!("a checkpoint without a VAE loaded")
    };
    let text = e.to_string();
    assert!(
        text.contains("no VAE") && text.contains("--vae") && !text.contains('\n'),
        "{text}"
    );
    let options = LoadOptions {
        vae: Some(vae_path.clone()),
        ..LoadOptions::default()
    };
    let model = load(&model_path, options).unwrap();
    compare("sd1", &model);
    // A checkpoint without its text encoder says what is missing.
    let no_text = tmp.path().join("notext.safetensors");
    rewrite_safetensors(&file("sd1"), &no_text, |n| {
        (!n.starts_with("cond_stage_model.")).then(|| n.to_string())
    });
    let Err(e) = load(&no_text, LoadOptions::default()) else {
        panic!("a checkpoint without a text encoder loaded")
    };
    assert!(e.to_string().contains("no text encoder"), "{e}");
    // The VAE file chosen as the model says what it is.
    let Err(e) = load(&vae_path, LoadOptions::default()) else {
        panic!("a VAE loaded as a model")
    };
    assert!(e.to_string().contains("a VAE, not a model"), "{e}");
}

/// A file with these (name, shape) F32 tensors, all zero.
fn tiny_file(dir: &Path, name: &str, tensors: &[(&str, Vec<usize>)]) -> PathBuf {
    let path = dir.join(name);
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, s)| vec![0u8; s.iter().product::<usize>() * 4])
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .zip(&data)
        .map(|((n, s), d)| {
            (
                n.to_string(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &path).unwrap();
    path
}

fn refused(path: &Path, expect: &str) {
    let Err(e) = load(path, LoadOptions::default()) else {
        panic!("{} loaded", path.display())
    };
    let text = e.to_string();
    assert!(!text.contains('\n'), "not one line: {text}");
    assert!(text.contains(expect), "{}: {text}", path.display());
    // The GUI's tokenizer path refuses it as well, without panicking.
    assert!(ModelFolder::open(path).is_err());
}

#[test]
fn bad_files_are_refused_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Not SD.
    refused(
        &tiny_file(
            dir,
            "sd3.safetensors",
            &[(
                "model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight",
                vec![2, 2],
            )],
        ),
        "Stable Diffusion 3",
    );
    refused(
        &tiny_file(
            dir,
            "flux.safetensors",
            &[("double_blocks.0.img_attn.norm.key_norm.scale", vec![2])],
        ),
        "Flux",
    );
    refused(
        &tiny_file(
            dir,
            "lora.safetensors",
            &[("lora_unet_down_blocks_0.lora_down.weight", vec![2, 2])],
        ),
        "LoRA",
    );
    refused(
        &tiny_file(dir, "other.safetensors", &[("weight", vec![2])]),
        "not a Stable Diffusion checkpoint",
    );
    refused(
        &tiny_file(
            dir,
            "pix2pix.safetensors",
            &[("model.diffusion_model.input_blocks.0.0.weight", vec![4, 8, 3, 3])],
        ),
        "8 input channels",
    );
    // Broken files.
    let empty = dir.join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    refused(&empty, "0 bytes");
    let bytes = std::fs::read(file("sd1")).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    refused(&cut, "1000 bytes shorter");
    let huge = dir.join("huge.safetensors");
    let header = br#"{"model.diffusion_model.input_blocks.0.0.weight":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,16]}}"#;
    let mut raw = (header.len() as u64).to_le_bytes().to_vec();
    raw.extend_from_slice(header);
    raw.extend_from_slice(&[0u8; 16]);
    std::fs::write(&huge, &raw).unwrap();
    refused(&huge, "claims 1000000000000 elements");
    let huge_honest = dir.join("huge2.safetensors");
    let header = br#"{"a":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,4000000000000]}}"#;
    let mut raw = (header.len() as u64).to_le_bytes().to_vec();
    raw.extend_from_slice(header);
    std::fs::write(&huge_honest, &raw).unwrap();
    refused(&huge_honest, "shorter than its header says");
    // Pickles are refused unopened (the file need not even exist).
    for ext in ["ckpt", "pt", "bin"] {
        let p = dir.join(format!("model.{ext}"));
        std::fs::write(&p, b"PK\x03\x04 not really").unwrap();
        refused(&p, "can run any code");
        refused(&p, ".safetensors version");
    }
}

#[test]
fn single_files_are_discovered_with_family_and_size() {
    use lantern::hub::discovery::{DiscoveryRoots, ModelStatus, discover};
    let tmp = tempfile::tempdir().unwrap();
    // A1111's layout: models/Stable-diffusion/<subfolder>/file.safetensors, VAEs elsewhere.
    let sd = tmp.path().join("Stable-diffusion").join("tiny");
    std::fs::create_dir_all(&sd).unwrap();
    std::fs::copy(file("sdxl"), sd.join("sdxl-tiny.safetensors")).unwrap();
    rewrite_safetensors(&file("sd1"), &sd.join("x.vae.safetensors"), |n| {
        n.strip_prefix("first_stage_model.").map(str::to_string)
    });
    std::fs::write(sd.join("old.ckpt"), b"pickle").unwrap();
    let roots = DiscoveryRoots {
        user_folders: vec![tmp.path().join("Stable-diffusion")],
        ..DiscoveryRoots::default()
    };
    let found = discover(&roots);
    assert_eq!(found.len(), 1, "{found:?}");
    let m = &found[0];
    assert_eq!(m.name, "sdxl-tiny");
    assert_eq!(m.family_label, "SDXL");
    assert_eq!(m.precision.to_string(), "fp16");
    assert_eq!(m.size.0, std::fs::metadata(file("sdxl")).unwrap().len());
    assert_eq!(m.status, ModelStatus::Complete);
}

/// `lantern generate --model FILE.safetensors` as a user runs it: diffusers' picture, A1111's
/// model name and hash in the PNG; `--prediction` and pickles as one-line errors.
#[test]
fn the_cli_generates_from_a_single_file() {
    use sha2::{Digest, Sha256};
    use std::process::Command;
    let tmp = tempfile::tempdir().unwrap();
    let lantern = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lantern"));
        c.env("LANTERN_DATA_DIR", tmp.path()).env("NO_COLOR", "1");
        c
    };
    let out = tmp.path().join("out.png");
    let sha_prefix = |p: &Path| -> String {
        let digest = Sha256::digest(std::fs::read(p).unwrap());
        digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
    };
    // diffusers' fixture picture from `sd1` (plus `extra` arguments); its PNG text.
    let generate = |extra: &[&std::ffi::OsStr]| -> String {
        let o = lantern()
            .args(["generate", "--prompt", "a lighthouse at dusk, oil painting"])
            .args([
                "--negative-prompt",
                "blurry, low quality",
                "--steps",
                "6",
                "--guidance",
                "7.5",
            ])
            .args(["--width", "64", "--height", "64", "--no-history", "-q", "--model"])
            .arg(file("sd1"))
            .args(extra)
            .arg("--init-latents")
            .arg(fixtures().join("latents/64x64.safetensors"))
            .arg("--output")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let reference = read_png(&fixtures().join("single-file/sd1/reference/default-sq-g7.png"));
        let (max, mean) = pixel_diff(&read_png(&out), &reference);
        assert!(max <= MAX_ABS && mean <= MAX_MEAN, "max {max} mean {mean}");
        lantern::output::read_parameters_file(&out).unwrap().unwrap()
    };
    let text = generate(&[]);
    let hash = sha_prefix(&file("sd1"));
    assert!(text.contains(&format!("Model hash: {hash}")), "{text}");
    assert!(text.contains("Model: sd1-tiny"), "{text}");
    assert!(!text.contains("VAE"), "the model's own VAE is not named: {text}");

    // A separate VAE file (here the checkpoint's own VAE, so the picture is the same) is named
    // in the PNG with its A1111 hash.
    let vae = tmp.path().join("tiny.vae.safetensors");
    rewrite_safetensors(&file("sd1"), &vae, |n| {
        n.strip_prefix("first_stage_model.").map(str::to_string)
    });
    let text = generate(&["--vae".as_ref(), vae.as_os_str()]);
    let vae_hash = sha_prefix(&vae);
    assert!(
        text.contains(&format!("VAE hash: {vae_hash}, VAE: tiny.vae.safetensors")),
        "{text}"
    );

    let o = lantern()
        .args(["generate", "--prompt", "x", "--prediction", "sideways", "--model"])
        .arg(file("sd2"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("epsilon or v"));
    let ckpt = tmp.path().join("model.ckpt");
    std::fs::write(&ckpt, b"not opened").unwrap();
    let o = lantern()
        .args(["generate", "--prompt", "x", "--model"])
        .arg(&ckpt)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.trim().lines().count() == 1, "{err}");
    assert!(
        err.contains("can run any code") && err.contains(".safetensors"),
        "{err}"
    );
}

/// A checkpoint without its VAE borrows the VAE of an installed diffusers model of the same
/// family and says so: `--vae` takes a diffusers VAE folder (or a model folder), and with no
/// `--vae` the CLI finds one itself, prints a note, lists it in `models list`, and names it in
/// the PNG. The fixture's VAE is the same weights, so the picture is diffusers' own.
#[test]
fn a_checkpoint_without_a_vae_borrows_its_familys() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let novae = models.join("novae.safetensors");
    rewrite_safetensors(&file("sd1"), &novae, |n| {
        (!n.starts_with("first_stage_model.")).then(|| n.to_string())
    });
    // In the library: a VAE folder, or a whole model folder, as the separate VAE.
    for vae in [fixtures().join("sd1-tiny/vae"), fixtures().join("sd1-tiny")] {
        let options = LoadOptions {
            vae: Some(vae.clone()),
            ..LoadOptions::default()
        };
        let model = load(&novae, options).unwrap();
        compare("sd1", &model);
        assert_eq!(model.vae_name().as_deref(), Some("sd1-tiny/vae"), "{}", vae.display());
        assert_eq!(model.vae_hash, None, "folders have no A1111 VAE hash");
    }
    let Err(e) = load(
        &novae,
        LoadOptions {
            vae: Some(tmp.path().to_path_buf()),
            ..LoadOptions::default()
        },
    ) else {
        panic!("a folder without a VAE was used as one")
    };
    assert!(e.to_string().contains("not a VAE folder"), "{e}");

    let lantern = || isolated_lantern(tmp.path(), tmp.path());
    let out = tmp.path().join("out.png");
    let generate = || reference_run(lantern(), &novae, &out);
    // Nothing to borrow from yet: the load says what to do.
    let o = generate();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no VAE") && err.contains("--vae"),
        "{err}"
    );

    copy_dir(&fixtures().join("sd1-tiny"), &models.join("sd1-tiny"));
    let o = lantern().args(["models", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(list.contains("no VAE in the file, uses sd1-tiny's"), "{list}");
    let o = generate();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("novae has no VAE: decoding with the VAE of sd1-tiny (same family)"),
        "{err}"
    );
    let reference = read_png(&fixtures().join("single-file/sd1/reference/default-sq-g7.png"));
    let (max, mean) = pixel_diff(&read_png(&out), &reference);
    assert!(max <= MAX_ABS && mean <= MAX_MEAN, "max {max} mean {mean}");
    let text = lantern::output::read_parameters_file(&out).unwrap().unwrap();
    assert!(text.contains("VAE: sd1-tiny/vae"), "{text}");
}

/// A checkpoint without its text encoder(s) uses those of an installed diffusers model of the
/// same family (the fixtures' folders hold the same weights, so the pictures are diffusers'
/// own); one of another family is refused by width; with nothing to borrow from, the CLI's
/// error and `models list` say what to do.
#[test]
fn a_checkpoint_without_a_text_encoder_borrows_its_familys() {
    let tmp = tempfile::tempdir().unwrap();
    for (family, prefix) in [("sd1", "cond_stage_model."), ("sdxl", "conditioner.")] {
        let notext = tmp.path().join(format!("{family}-notext.safetensors"));
        rewrite_safetensors(&file(family), &notext, |n| {
            (!n.starts_with(prefix)).then(|| n.to_string())
        });
        let options = LoadOptions {
            text_encoders: Some(fixtures().join(format!("{family}-tiny"))),
            ..LoadOptions::default()
        };
        let model = load(&notext, options).unwrap();
        assert_eq!(model.text_encoders.len(), if family == "sdxl" { 2 } else { 1 });
        compare(family, &model);
    }
    let notext = tmp.path().join("sd1-notext.safetensors");
    // (The tiny SD 1 and SD 2 encoders have the same width; SDXL's pair is wider.)
    let other_family = LoadOptions {
        text_encoders: Some(fixtures().join("sdxl-tiny")),
        ..LoadOptions::default()
    };
    let Err(e) = load(&notext, other_family) else {
        panic!("SDXL text encoders were used for an SD 1 UNet")
    };
    assert!(e.to_string().contains("-wide text"), "{e}");

    // The CLI: listed as incomplete with the reason, then borrowing once a model is installed.
    let data = tmp.path().join("data");
    let models = data.join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::rename(&notext, models.join("notext.safetensors")).unwrap();
    let lantern = || isolated_lantern(&data, tmp.path());
    let list = || {
        let o = lantern().args(["models", "list"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let before = list();
    assert!(
        before.contains("no text encoder in the file, and no installed diffusers model of its family"),
        "{before}"
    );
    copy_dir(&fixtures().join("sd1-tiny"), &models.join("sd1-tiny"));
    let after = list();
    assert!(
        after.contains("ok: no text encoder in the file, uses sd1-tiny's"),
        "{after}"
    );
    let out = tmp.path().join("out.png");
    let o = reference_run(lantern(), &models.join("notext.safetensors"), &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("notext has no text encoder: using the text encoder of sd1-tiny (same family)"),
        "{err}"
    );
    let reference = read_png(&fixtures().join("single-file/sd1/reference/default-sq-g7.png"));
    let (max, mean) = pixel_diff(&read_png(&out), &reference);
    assert!(max <= MAX_ABS && mean <= MAX_MEAN, "max {max} mean {mean}");
}

/// `lantern` with its data in `data` and a Hugging Face cache under `scratch` (nothing of the
/// user's own is seen).
fn isolated_lantern(data: &Path, scratch: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lantern"));
    c.env("LANTERN_DATA_DIR", data)
        .env("HF_HOME", scratch.join("hf"))
        .env("HF_HUB_CACHE", scratch.join("hf"))
        .env("NO_COLOR", "1");
    c
}

/// `lantern generate` of the single-file reference case `default-sq-g7` from `model`, into `out`.
fn reference_run(mut lantern: std::process::Command, model: &Path, out: &Path) -> std::process::Output {
    lantern
        .args(["generate", "--prompt", "a lighthouse at dusk, oil painting"])
        .args(["--negative-prompt", "blurry, low quality", "--steps", "6"])
        .args(["--guidance", "7.5", "--width", "64", "--height", "64"])
        .args(["--no-history", "-q", "--model"])
        .arg(model)
        .arg("--init-latents")
        .arg(fixtures().join("latents/64x64.safetensors"))
        .arg("--output")
        .arg(out)
        .output()
        .unwrap()
}

/// An inpainting checkpoint (9-channel UNet, as sd-v1-5-inpainting.safetensors), UNet and VAE
/// only, lent its text encoder: it inpaints as the same weights do from the diffusers folder,
/// whose pictures diffusers made (tests/img2img.rs' references).
#[test]
fn an_inpainting_checkpoint_inpaints_like_diffusers() {
    use lantern::pipeline::Request;
    use lantern::recipe::{PromptSyntax, Recipe};
    use lantern::source::{SourceImages, read_init_image, read_mask};
    let path = fixtures().join("single-file/sd1/sd1-inpaint-tiny.safetensors");
    let options = LoadOptions {
        text_encoders: Some(fixtures().join("sd1-tiny")),
        ..LoadOptions::default()
    };
    let model = load(&path, options).unwrap();
    assert!(model.is_inpainting());
    let refs = fixtures().join("reference/img2img");
    let recipe = Recipe {
        prompt: "a small boat on a calm lake".into(),
        negative_prompt: "blurry".into(),
        steps: 10,
        guidance: 7.5,
        width: 64,
        height: 64,
        seed: 1,
        sampler: lantern::schedulers::SamplerKind::Euler,
        rng: lantern::recipe::NoiseKind::Cpu,
        prompt_syntax: PromptSyntax::Plain,
        strength: 1.0,
        mask_blur: 0,
        keep_unmasked: false,
        ..Recipe::default()
    };
    let req = Request {
        source: Some(SourceImages {
            image: read_init_image(&refs.join("square.png")).unwrap(),
            mask: Some(read_mask(&refs.join("square-mask.png")).unwrap()),
        }),
        ..Request::new(recipe)
    };
    let ours = run(&model, &req);
    let (max, mean) = pixel_diff(&ours[0], &read_png(&refs.join("sd1-inpaint-euler-100.png")));
    assert!(max <= 3 && mean <= 0.5, "max {max}, mean {mean:.3}");
}

/// An SDXL refiner checkpoint (OpenCLIP bigG alone in `conditioner.embedders.0`, five size
/// numbers with the aesthetic score): recognised, loaded with the refiner's settings, and
/// refining a picture like the diffusers folder of the same weights does in diffusers.
#[test]
fn an_sdxl_refiner_checkpoint_refines_like_diffusers() {
    use lantern::pipeline::Request;
    use lantern::recipe::{PromptSyntax, Recipe};
    use lantern::source::{SourceImages, read_init_image};
    let path = fixtures().join("single-file/sdxl-refiner/sdxl-refiner-tiny.safetensors");
    let model = load(&path, LoadOptions::default()).unwrap();
    assert!(model.folder.requires_aesthetics_score);
    assert_eq!(model.text_encoders.len(), 1);
    let refs = fixtures().join("reference/img2img");
    let recipe = Recipe {
        prompt: "a small boat on a calm lake".into(),
        negative_prompt: "blurry".into(),
        steps: 10,
        guidance: 7.5,
        width: 72,
        height: 48,
        seed: 26,
        sampler: lantern::schedulers::SamplerKind::from_cli_name("euler-a").unwrap(),
        rng: lantern::recipe::NoiseKind::Cpu,
        prompt_syntax: PromptSyntax::Plain,
        strength: 0.5,
        ..Recipe::default()
    };
    let req = Request {
        source: Some(SourceImages {
            image: read_init_image(&refs.join("wide.png")).unwrap(),
            mask: None,
        }),
        ..Request::new(recipe)
    };
    let ours = run(&model, &req);
    let (max, mean) = pixel_diff(&ours[0], &read_png(&refs.join("sdxl-refiner-euler-a-50.png")));
    assert!(max <= 3 && mean <= 0.5, "max {max}, mean {mean:.3}");
}
