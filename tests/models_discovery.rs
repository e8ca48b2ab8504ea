//! Discovery of models on disk: fake Hugging Face cache folders (blobs + relative symlinks, as
//! huggingface_hub writes them), user folders and the project's weights/ folder.
#![cfg(unix)]

mod common;
mod support;

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use common::{copy_dir, fake_cache_repo, fixture_dir, fixture_files, sha256_hex};
use lantern::hub::{BaseArch, DiscoveryRoots, Family, LocalModel, ModelSource, ModelStatus, Precision, discover};

fn cache_roots(cache: &Path) -> DiscoveryRoots {
    DiscoveryRoots {
        hf_caches: vec![cache.to_path_buf()],
        ..DiscoveryRoots::default()
    }
}

/// Bytes of the distinct contents of a fixture: what a blob store holds.
fn unique_bytes(fixture: &str) -> u64 {
    let mut seen = HashSet::new();
    fixture_files(&fixture_dir(fixture))
        .into_iter()
        .filter(|(_, c)| seen.insert(sha256_hex(c)))
        .map(|(_, c)| c.len() as u64)
        .sum()
}

fn find<'a>(models: &'a [LocalModel], name: &str) -> &'a LocalModel {
    models
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} not found in {models:?}"))
}

#[test]
fn fake_cache_snapshots_are_discovered_in_place_with_family_size_and_precision() {
    let cache = tempfile::tempdir().unwrap();
    let sd1 = fake_cache_repo(
        cache.path(),
        "acme/tiny-sd1",
        "1111111111111111111111111111111111111111",
        &fixture_dir("sd1-tiny"),
    );
    let sdxl = fake_cache_repo(
        cache.path(),
        "acme/tiny-xl",
        "2222222222222222222222222222222222222222",
        &fixture_dir("sdxl-tiny"),
    );
    // Not models: a dataset and a stray folder.
    fs::create_dir_all(cache.path().join("datasets--acme--data/snapshots/x")).unwrap();
    fs::create_dir_all(cache.path().join(".locks")).unwrap();

    let models = discover(&cache_roots(cache.path()));
    assert_eq!(models.len(), 2, "{models:?}");

    let m = find(&models, "acme/tiny-sd1");
    assert_eq!(m.path, sd1, "listed in place, not copied");
    assert_eq!((m.family, m.base), (Family::Sd1, BaseArch::Sd1));
    assert_eq!(m.precision, Precision::Fp32);
    assert_eq!(m.status, ModelStatus::Complete);
    assert_eq!(m.size.0, unique_bytes("sd1-tiny"));
    assert_eq!(
        m.source,
        ModelSource::HfCache {
            repo_id: "acme/tiny-sd1".into(),
            commit: "1111111111111111111111111111111111111111".into(),
            refs: vec!["main".into()],
        }
    );

    let x = find(&models, "acme/tiny-xl");
    assert_eq!(x.path, sdxl);
    assert_eq!(x.family, Family::Sdxl);
    assert_eq!(x.precision, Precision::Fp16);
    assert_eq!(x.status, ModelStatus::Complete);
    // tokenizer/ and tokenizer_2/ share vocab.json and merges.txt: one blob each, counted once.
    let all_files: u64 = fixture_files(&fixture_dir("sdxl-tiny"))
        .iter()
        .map(|(_, c)| c.len() as u64)
        .sum();
    assert!(x.size.0 < all_files);
    assert_eq!(x.size.0, unique_bytes("sdxl-tiny"));
}

#[test]
fn incomplete_snapshots_are_listed_with_the_reason() {
    let cache = tempfile::tempdir().unwrap();
    let rev = "3333333333333333333333333333333333333333";
    let snapshot = fake_cache_repo(cache.path(), "acme/partial", rev, &fixture_dir("sd1-tiny"));
    // The UNet blob never arrived (dangling link) and the VAE folder is missing altogether.
    let unet = snapshot.join("unet/diffusion_pytorch_model.safetensors");
    fs::remove_file(fs::canonicalize(&unet).unwrap()).unwrap();
    fs::remove_dir_all(snapshot.join("vae")).unwrap();

    let models = discover(&cache_roots(cache.path()));
    let m = find(&models, "acme/partial");
    assert_eq!(m.family, Family::Sd1);
    let ModelStatus::Incomplete(problems) = &m.status else {
        panic!("listed as complete: {m:?}");
    };
    assert!(
        problems.iter().any(|p| p.contains("unet/") && p.contains("missing")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| p == "vae/ is missing"), "{problems:?}");
    assert!(!m.is_complete());
}

#[test]
fn snapshots_without_refs_are_still_found() {
    let cache = tempfile::tempdir().unwrap();
    let rev = "4444444444444444444444444444444444444444";
    fake_cache_repo(cache.path(), "acme/norefs", rev, &fixture_dir("sd2-tiny"));
    fs::remove_dir_all(cache.path().join("models--acme--norefs/refs")).unwrap();
    let models = discover(&cache_roots(cache.path()));
    let m = find(&models, "acme/norefs");
    assert_eq!(m.family, Family::Sd2);
    assert!(matches!(&m.source, ModelSource::HfCache { commit, refs, .. } if commit == rev && refs.is_empty()));
}

#[test]
fn user_folders_project_weights_and_the_turbo_rule() {
    let project = tempfile::tempdir().unwrap();
    let weights = project.path().join("weights");
    // Named turbo: SD-Turbo whatever its scheduler.
    copy_dir(&fixture_dir("sd2-tiny"), &weights.join("my-sd-turbo"));
    // Not named turbo, but shipped with a trailing-spacing Euler scheduler: SD-Turbo too.
    let trailing = weights.join("org").join("distilled");
    copy_dir(&fixture_dir("sd1-tiny"), &trailing);
    fs::write(
        trailing.join("scheduler/scheduler_config.json"),
        r#"{"_class_name": "EulerDiscreteScheduler", "timestep_spacing": "trailing", "num_train_timesteps": 1000}"#,
    )
    .unwrap();
    // An SDXL named turbo is SDXL-Turbo.
    copy_dir(&fixture_dir("sdxl-tiny"), &weights.join("sdxl-turbo-copy"));
    // Unsupported pipeline and a folder with only pickles are not listed / listed incomplete.
    let upscaler = weights.join("upscaler");
    copy_dir(&fixture_dir("sd1-tiny"), &upscaler);
    fs::write(
        upscaler.join("model_index.json"),
        r#"{"_class_name": "StableDiffusionUpscalePipeline"}"#,
    )
    .unwrap();
    let pickles = weights.join("pickles");
    copy_dir(&fixture_dir("sd1-tiny"), &pickles);
    fs::rename(
        pickles.join("unet/diffusion_pytorch_model.safetensors"),
        pickles.join("unet/diffusion_pytorch_model.bin"),
    )
    .unwrap();

    let roots = DiscoveryRoots {
        project_weights: vec![weights.clone(), weights.clone()], // listed once anyway
        user_folders: vec![fixture_dir("")],                     // tests/fixtures: a folder of model folders
        ..DiscoveryRoots::default()
    };
    let models = discover(&roots);
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "my-sd-turbo",
            "distilled",
            "pickles",
            "sdxl-turbo-copy",
            // An inpainting model (StableDiffusionInpaintPipeline) is a model like the others.
            "sd1-inpaint-tiny",
            "sd1-tiny",
            "sd2-tiny",
            "sdxl-inpaint-tiny",
            // An SDXL refiner (StableDiffusionXLImg2ImgPipeline) too.
            "sdxl-refiner-tiny",
            "sdxl-tiny",
            // The single-file fixtures (tests/fixtures/single-file/<family>/), two levels down.
            "sd1-inpaint-tiny",
            "sd1-tiny",
            "sd2-tiny",
            "sdxl-tiny",
            "sdxl-refiner-tiny"
        ],
    );
    let singles: Vec<_> = models.iter().filter(|m| m.path.is_file()).collect();
    assert_eq!(singles.len(), 5);
    let families = [Family::Sd1, Family::Sd1, Family::Sd2, Family::Sdxl, Family::Sdxl];
    for (m, family) in singles.iter().zip(families) {
        assert_eq!(m.family, family, "{}", m.path.display());
        assert!(m.pipeline.ends_with("(single file)"), "{}", m.pipeline);
        assert_eq!(m.status, ModelStatus::Complete);
    }

    assert_eq!(find(&models, "my-sd-turbo").family, Family::SdTurbo);
    assert_eq!(find(&models, "my-sd-turbo").base, BaseArch::Sd2);
    assert_eq!(find(&models, "distilled").family, Family::SdTurbo);
    assert_eq!(find(&models, "sdxl-turbo-copy").family, Family::SdxlTurbo);
    assert_eq!(find(&models, "sdxl-turbo-copy").source, ModelSource::ProjectWeights);
    let ModelStatus::Incomplete(problems) = &find(&models, "pickles").status else {
        panic!("pickle-only UNet listed as complete");
    };
    assert!(problems[0].contains("pickle"), "{problems:?}");

    for (name, family) in [
        ("sd1-tiny", Family::Sd1),
        ("sd2-tiny", Family::Sd2),
        ("sdxl-tiny", Family::Sdxl),
    ] {
        let m = find(&models, name);
        assert_eq!(m.family, family, "{name}");
        assert_eq!(m.source, ModelSource::UserFolder);
        assert_eq!(m.status, ModelStatus::Complete, "{name}");
        let files: u64 = fixture_files(&fixture_dir(name))
            .iter()
            .map(|(_, c)| c.len() as u64)
            .sum();
        assert_eq!(m.size.0, files, "{name}: plain folders count every file");
    }
    assert_eq!(find(&models, "sd2-tiny").prediction_type, "v_prediction");

    // A user folder that is itself a model folder.
    let single = DiscoveryRoots {
        user_folders: vec![fixture_dir("sd1-tiny")],
        ..DiscoveryRoots::default()
    };
    assert_eq!(discover(&single).len(), 1);
}

#[test]
fn json_listing_is_stable_for_scripts() {
    let roots = DiscoveryRoots {
        user_folders: vec![fixture_dir("sd2-tiny")],
        ..DiscoveryRoots::default()
    };
    let json = serde_json::to_value(discover(&roots)).unwrap();
    let m = &json[0];
    assert_eq!(m["name"], "sd2-tiny");
    assert_eq!(m["family"], "sd2");
    assert_eq!(m["family_label"], "SD 2.x");
    assert_eq!(m["precision"], "fp32");
    assert_eq!(m["source"]["kind"], "user-folder");
    assert_eq!(m["status"]["state"], "complete");
    assert!(m["size"].as_u64().unwrap() > 1_000_000);
}

/// Separate VAEs are found where A1111 and ComfyUI users keep them, and nothing else is taken
/// for one.
#[test]
fn vae_files_are_found_beside_checkpoints_and_in_vae_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let a1111 = tmp.path().join("stable-diffusion-webui/models");
    let weights = tmp.path().join("weights");
    let data_models = tmp.path().join("data/models");
    for (path, bytes) in [
        (a1111.join("Stable-diffusion/dreamshaper_8.safetensors"), "model"),
        (a1111.join("VAE/vae-ft-mse-840000-ema-pruned.safetensors"), "vae"),
        (weights.join("anything.vae.safetensors"), "vae"),
        (weights.join("sub/Kl-F8.VAE.safetensors"), "vae"),
        (weights.join("lora_style.safetensors"), "not a vae"),
        (data_models.join("vae/sdxl_vae.safetensors"), "vae"),
        (data_models.join("vae/readme.txt"), "not a vae"),
    ] {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
    }
    let roots = DiscoveryRoots {
        project_weights: vec![weights.clone()],
        data_dir_models: Some(data_models.clone()),
        user_folders: vec![a1111.join("Stable-diffusion")],
        hf_caches: Vec::new(),
    };
    let names: Vec<String> = lantern::hub::discover_vaes(&roots)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "anything.vae.safetensors",
            "Kl-F8.VAE.safetensors",
            "sdxl_vae.safetensors",
            "vae-ft-mse-840000-ema-pruned.safetensors"
        ]
    );
}

/// A single file without its VAE is listed as usable once a VAE is chosen, not as broken.
#[test]
fn a_checkpoint_without_its_vae_is_listed_as_needing_one() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/single-file/sd1/sd1-tiny.safetensors");
    support::rewrite_safetensors(&src, &tmp.path().join("novae.safetensors"), |n| {
        (!n.starts_with("first_stage_model.")).then(|| n.to_string())
    });
    fs::copy(&src, tmp.path().join("whole.safetensors")).unwrap();
    let roots = DiscoveryRoots {
        user_folders: vec![tmp.path().to_path_buf()],
        ..DiscoveryRoots::default()
    };
    let models = discover(&roots);
    let novae = find(&models, "novae");
    assert!(novae.is_complete() && novae.needs_vae, "{novae:?}");
    let whole = find(&models, "whole");
    assert!(whole.is_complete() && !whole.needs_vae, "{whole:?}");
}

/// LoRA files where A1111, ComfyUI and Lantern keep them, each listed once, with the family
/// their header says; VAE files beside them are not LoRAs.
#[test]
fn loras_are_found_where_people_keep_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (weights, data_models, a1111) = (
        tmp.path().join("weights"),
        tmp.path().join("data/models"),
        tmp.path().join("a1111/models"),
    );
    let fixture = |name: &str| {
        fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/loras")
                .join(name),
        )
        .unwrap()
    };
    for (path, bytes) in [
        (a1111.join("Stable-diffusion/dreamshaper_8.safetensors"), b"x".to_vec()),
        (
            a1111.join("Lora/style/ink.safetensors"),
            fixture("sd1-kohya.safetensors"),
        ),
        (a1111.join("Lora/ink-preview.png"), b"not used".to_vec()),
        (a1111.join("Lora/xl.safetensors"), fixture("sdxl-kohya.safetensors")),
        (a1111.join("Lora/xl.preview.png"), b"png".to_vec()),
        (weights.join("loras/peft.safetensors"), fixture("sd1-peft.safetensors")),
        (weights.join("loras/some.vae.safetensors"), b"x".to_vec()),
        (
            tmp.path().join("data/loras/own.safetensors"),
            fixture("sd1-locon.safetensors"),
        ),
        (
            tmp.path().join("data/loras/junk.safetensors"),
            b"not a safetensors file".to_vec(),
        ),
    ] {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
    }
    let roots = DiscoveryRoots {
        project_weights: vec![weights.clone(), weights.clone()],
        data_dir_models: Some(data_models),
        user_folders: vec![a1111.join("Stable-diffusion")],
        hf_caches: Vec::new(),
    };
    let infos: Vec<lantern::hub::LoraInfo> = lantern::hub::discover_loras(&roots, &[])
        .iter()
        .map(|f| lantern::hub::describe_lora(f))
        .collect();
    let summary: Vec<(String, lantern::hub::LoraKind, bool)> = infos
        .iter()
        .map(|l| (l.name.clone(), l.kind, l.preview.is_some()))
        .collect();
    use lantern::hub::LoraKind::*;
    assert_eq!(
        summary,
        vec![
            ("ink".to_string(), For(BaseArch::Sd1), false),
            ("junk".to_string(), NotALora, false),
            ("own".to_string(), For(BaseArch::Sd1), false),
            ("peft".to_string(), Unknown, false),
            ("xl".to_string(), For(BaseArch::Sdxl), true),
        ],
        "the tiny SD 1 fixtures' text width is no real family's: kohya's metadata names it, the PEFT file says nothing"
    );
    // A folder named as a LoRA folder is scanned as it is.
    let only = lantern::hub::discover_loras(&DiscoveryRoots::default(), &[a1111.join("Lora")]);
    assert_eq!(only.len(), 2);
}

/// Embeddings in A1111's top-level `embeddings/`, ComfyUI's `models/embeddings`, Lantern's
/// own folder and a folder named by hand.
#[test]
fn embeddings_are_found_where_people_keep_them() {
    let tmp = tempfile::tempdir().unwrap();
    let webui = tmp.path().join("stable-diffusion-webui");
    let comfy = tmp.path().join("ComfyUI/models");
    for path in [
        webui.join("models/Stable-diffusion/model.safetensors"),
        webui.join("embeddings/easynegative.safetensors"),
        webui.join("embeddings/styles/ink.safetensors"),
        comfy.join("checkpoints/xl.safetensors"),
        comfy.join("embeddings/xl-style.safetensors"),
        tmp.path().join("data/embeddings/own.safetensors"),
        tmp.path().join("mine/byhand.safetensors"),
    ] {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"x").unwrap();
    }
    let roots = DiscoveryRoots {
        project_weights: Vec::new(),
        data_dir_models: Some(tmp.path().join("data/models")),
        user_folders: vec![webui.join("models/Stable-diffusion"), comfy.join("checkpoints")],
        hf_caches: Vec::new(),
    };
    let names: Vec<String> = lantern::hub::discover_embeddings(&roots, &[tmp.path().join("mine")])
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["byhand", "easynegative", "ink", "own", "xl-style"]);
}

/// Tiny autoencoders (TAESD) are found in the data folder, `weights/`, A1111's `VAE-approx`
/// beside an added folder and the Hugging Face cache, each paired by its name with the latents
/// it decodes; none of them is listed as a model, and a half-downloaded one is not offered.
#[test]
fn taesds_are_found_and_paired_with_their_family() {
    use lantern::hub::{TaesdSpace, discover_taesds, taesd_for};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let taesd = fixture_dir("taesd/taesd-tiny");
    let taesdxl = fixture_dir("taesd/taesdxl-tiny");
    // The cache: madebyollin/taesdxl as `models download taesdxl` leaves it.
    let cache = root.join("hf");
    fake_cache_repo(
        &cache,
        "madebyollin/taesdxl",
        "3333333333333333333333333333333333333333",
        &taesdxl,
    );
    // An interrupted download: the config without weights.
    let partial = root.join("partial");
    fs::create_dir_all(&partial).unwrap();
    fs::copy(taesd.join("config.json"), partial.join("config.json")).unwrap();
    fake_cache_repo(
        &cache,
        "madebyollin/taesd",
        "4444444444444444444444444444444444444444",
        &partial,
    );
    // A1111: models/Stable-diffusion (added) and models/VAE-approx beside it.
    let a1111 = root.join("webui/models");
    fs::create_dir_all(a1111.join("Stable-diffusion")).unwrap();
    fs::create_dir_all(a1111.join("VAE-approx")).unwrap();
    fs::copy(
        taesd.join("taesd_decoder.safetensors"),
        a1111.join("VAE-approx/taesd_decoder.safetensors"),
    )
    .unwrap();
    fs::copy(
        taesd.join("taesd_encoder.safetensors"),
        a1111.join("VAE-approx/taesd_encoder.safetensors"),
    )
    .unwrap();
    // SD3's would be skipped: Lantern makes no 16-channel latents.
    fs::copy(
        taesd.join("taesd_decoder.safetensors"),
        a1111.join("VAE-approx/taesd3_decoder.safetensors"),
    )
    .unwrap();
    // The data folder's models/ holds a copy of taesd-tiny, beside a real model.
    let data_models = root.join("data/models");
    copy_dir(&taesd, &data_models.join("taesd-tiny"));
    copy_dir(&fixture_dir("sd1-tiny"), &data_models.join("sd1-tiny"));

    let roots = DiscoveryRoots {
        data_dir_models: Some(data_models.clone()),
        user_folders: vec![a1111.join("Stable-diffusion")],
        hf_caches: vec![cache.clone()],
        ..DiscoveryRoots::default()
    };
    let found = discover_taesds(&roots);
    let listed: Vec<(&str, TaesdSpace)> = found.iter().map(|t| (t.name.as_str(), t.space)).collect();
    assert_eq!(
        listed,
        [
            ("taesd-tiny", TaesdSpace::Sd),
            ("taesd_decoder.safetensors", TaesdSpace::Sd),
            ("madebyollin/taesdxl", TaesdSpace::Sdxl),
        ],
        "{found:?}"
    );
    assert_eq!(
        taesd_for(&found, BaseArch::Sd2).unwrap().path,
        data_models.join("taesd-tiny")
    );
    let xl = taesd_for(&found, BaseArch::Sdxl).unwrap();
    assert!(
        xl.path.ends_with("snapshots/3333333333333333333333333333333333333333"),
        "{xl:?}"
    );
    // Only the SD model is a model.
    let models = discover(&roots);
    assert_eq!(models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["sd1-tiny"]);

    // Each one found loads as the decoder it was paired as.
    for t in &found {
        lantern::model::taesd::load_decoder(&t.path, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    }
    // Nothing for SDXL without taesdxl.
    let sd_only = DiscoveryRoots {
        hf_caches: vec![],
        ..roots
    };
    assert!(taesd_for(&discover_taesds(&sd_only), BaseArch::Sdxl).is_none());
}
