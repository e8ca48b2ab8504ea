//! LoRAs on the tiny fixtures (tools/make_lora_fixtures.py): kohya, PEFT, LoCon and SDXL
//! kohya files with the original block names.
//!
//! - The picture with `<lora:NAME:W>` equals the one from a copy of the model whose weights
//!   were merged by hand here (W + w·alpha/rank·up@down, with candle's plain ops and the
//!   file's own target list), and diffusers' picture of the same merge (≤ 3/255).
//! - Changing the set and going back gives the first picture bit for bit.
//! - A LoRA that does not fit is refused in one line and leaves the model as it was.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use lantern::model::LoadedModel;
use lantern::pipeline::{self, Event, Request};
use serde::Deserialize;
use support::*;

#[derive(Deserialize)]
struct Cases {
    loras: Vec<LoraCase>,
    nomatch: NoMatch,
}

#[derive(Deserialize)]
struct LoraCase {
    file: String,
    family: String,
    layout: String,
    model: String,
    addnet_hash: String,
    baseline: String,
    targets: Vec<Target>,
    references: Vec<Reference>,
}

#[derive(Deserialize, Clone)]
struct Target {
    prefix: String,
    component: String,
    tensor: String,
    rank: usize,
    alpha: Option<f64>,
}

#[derive(Deserialize, Clone)]
struct Reference {
    png: String,
    weight: f64,
    prompt: String,
    negative_prompt: String,
    steps: u32,
    guidance: f64,
    width: u32,
    height: u32,
    latents: String,
    scheduler: String,
}

#[derive(Deserialize)]
struct NoMatch {
    file: String,
}

fn cases() -> Cases {
    let text = std::fs::read_to_string(lora_dir().join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn lora_dir() -> PathBuf {
    fixtures().join("loras")
}

fn stem(file: &str) -> &str {
    file.strip_suffix(".safetensors").unwrap()
}

/// The reference's request, with `prompt` in place of its prompt, the fixtures' LoRAs findable.
fn request(r: &Reference, prompt: &str) -> Request {
    let case = ReferenceCase {
        file: r.png.clone(),
        scheduler: r.scheduler.clone(),
        height: r.height,
        width: r.width,
        guidance: r.guidance,
        prompt: prompt.to_string(),
        negative_prompt: Some(r.negative_prompt.clone()),
        steps: r.steps,
        latents: r.latents.clone(),
    };
    Request {
        lora_files: lora_files(),
        ..request_for(&case)
    }
}

fn lora_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(lora_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
}

fn try_run(model: &LoadedModel, req: &Request) -> lantern::error::Result<Vec<pipeline::Generated>> {
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let mut out = Vec::new();
    pipeline::generate(model, req, &cancel, &mut |e| {
        if let Event::ImageReady(g) = e {
            out.push(*g);
        }
    })?;
    Ok(out)
}

/// The component's weight file (the SDXL fixture keeps only its fp16 variant).
fn component_file(model_dir: &Path, component: &str) -> PathBuf {
    let base = match component {
        "unet" => "diffusion_pytorch_model",
        "text_encoder" | "text_encoder_2" => "model",
        other => panic!("unknown component {other}"),
    };
    let dir = model_dir.join(component);
    [format!("{base}.safetensors"), format!("{base}.fp16.safetensors")]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no weights in {}", dir.display()))
}

/// A copy of `model` with each LoRA (file, weight) merged into its weights by hand.
fn merged_copy(model: &str, loras: &[(&LoraCase, f64)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixtures().join(model);
    copy_dir(&src, tmp.path());
    let mut by_component: HashMap<String, Vec<(Target, Tensor, Tensor, f64)>> = HashMap::new();
    for (case, weight) in loras {
        let lora = candle_core::safetensors::load(lora_dir().join(&case.file), &Device::Cpu).unwrap();
        let get = |prefix: &str, suffixes: [&str; 2]| -> Tensor {
            let t = suffixes
                .iter()
                .find_map(|s| lora.get(&format!("{prefix}{s}")))
                .unwrap_or_else(|| panic!("{prefix} not in {}", case.file));
            t.to_dtype(DType::F32).unwrap()
        };
        for t in &case.targets {
            let down = get(&t.prefix, [".lora_down.weight", ".lora_A.weight"]);
            let up = get(&t.prefix, [".lora_up.weight", ".lora_B.weight"]);
            let scale = weight * t.alpha.unwrap_or(t.rank as f64) / t.rank as f64;
            by_component
                .entry(t.component.clone())
                .or_default()
                .push((t.clone(), down, up, scale));
        }
    }
    for (component, targets) in by_component {
        let file = component_file(tmp.path(), &component);
        let mut tensors = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
        for (t, down, up, scale) in targets {
            let w = tensors
                .get(&t.tensor)
                .unwrap_or_else(|| panic!("{} not in {component}", t.tensor));
            let delta = up
                .flatten_from(1)
                .unwrap()
                .matmul(&down.flatten_from(1).unwrap())
                .unwrap()
                .reshape(w.dims())
                .unwrap();
            let merged = (w.to_dtype(DType::F32).unwrap() + (delta * scale).unwrap())
                .unwrap()
                .to_dtype(w.dtype())
                .unwrap();
            tensors.insert(t.tensor.clone(), merged);
        }
        candle_core::safetensors::save(&tensors, &file).unwrap();
    }
    tmp
}

fn load(dir: &Path) -> LoadedModel {
    LoadedModel::load(dir, Default::default(), &mut |_| {}).unwrap()
}

fn tagged(prompt: &str, file: &str, weight: f64) -> String {
    format!("{prompt} <lora:{}:{weight}>", stem(file))
}

/// Every layout at two weights: our merge = the hand merge (≤ 1/255) = diffusers' picture
/// (≤ 3/255), the LoRA visibly changes the picture, and the picture records the file's hash.
#[test]
fn every_layout_matches_the_hand_merge_and_diffusers() {
    let cases = cases();
    let mut report = Vec::new();
    for family in ["sd1", "sdxl"] {
        let family_cases: Vec<&LoraCase> = cases.loras.iter().filter(|c| c.family == family).collect();
        let model = load_model(&family_cases[0].model);
        for case in family_cases {
            let baseline = read_png(&lora_dir().join(&case.baseline));
            for r in &case.references {
                let ours = &try_run(&model, &request(r, &tagged(&r.prompt, &case.file, r.weight))).unwrap()[0];
                let merged_dir = merged_copy(&case.model, &[(case, r.weight)]);
                let by_hand = &run(&load(merged_dir.path()), &request(r, &r.prompt))[0];
                let diffusers = read_png(&lora_dir().join(&r.png));
                let (hand_max, _) = pixel_diff(&ours.image, by_hand);
                let (ref_max, ref_mean) = pixel_diff(&ours.image, &diffusers);
                let (_, changed) = pixel_diff(&baseline, &diffusers);
                report.push(format!(
                    "{} ({}) ×{}: vs hand merge {hand_max}/255, vs diffusers {ref_max}/255 (mean {ref_mean:.3}), LoRA changes the picture by {changed:.1}/255 on average",
                    case.file, case.layout, r.weight
                ));
                assert!(hand_max <= 1, "{}", report.last().unwrap());
                assert!(ref_max <= 3, "{}", report.last().unwrap());
                assert!(changed >= 2.0, "{}", report.last().unwrap());
                assert_eq!(
                    ours.params.lora_hashes,
                    vec![(stem(&case.file).to_string(), case.addnet_hash.clone())]
                );
                assert!(ours.params.prompt.contains("<lora:"), "the recipe keeps the tag");
            }
        }
    }
    println!("{}", report.join("\n"));
}

/// Two LoRAs at once add up; then taking them away, in any order, gives the first picture
/// bit for bit: the weights are restored exactly, not by subtraction.
#[test]
fn changing_the_set_and_going_back_is_exact() {
    let cases = cases();
    let kohya = cases.loras.iter().find(|c| c.file == "sd1-kohya.safetensors").unwrap();
    let peft = cases.loras.iter().find(|c| c.file == "sd1-peft.safetensors").unwrap();
    let r = &kohya.references[0];
    let model = load_model(&kohya.model);
    let plain = run(&model, &request(r, &r.prompt)).remove(0);

    let both_prompt = format!("{} <lora:sd1-peft:0.5>", tagged(&r.prompt, &kohya.file, 0.8));
    let both = try_run(&model, &request(r, &both_prompt)).unwrap().remove(0);
    let merged_dir = merged_copy(&kohya.model, &[(kohya, 0.8), (peft, 0.5)]);
    let by_hand = run(&load(merged_dir.path()), &request(r, &r.prompt)).remove(0);
    let (max, _) = pixel_diff(&both.image, &by_hand);
    assert!(max <= 1, "two LoRAs differ from their hand merge by {max}/255");
    assert_eq!(both.params.lora_hashes.len(), 2);
    let text = lantern::output::format_parameters(&both.params);
    let expected = format!(
        "Lora hashes: \"sd1-kohya: {}, sd1-peft: {}\"",
        kohya.addnet_hash, peft.addnet_hash
    );
    assert!(text.lines().last().unwrap().contains(&expected), "{text}");

    for prompt in [
        tagged(&r.prompt, &peft.file, -1.0),
        tagged(&r.prompt, &kohya.file, 0.3),
        r.prompt.clone(),
    ] {
        let img = run(&model, &request(r, &prompt)).remove(0);
        if prompt == r.prompt {
            assert_eq!(img, plain, "back to no LoRA must be the first picture exactly");
        } else {
            assert_ne!(img, plain);
        }
    }
    assert!(model.lora.applied().is_empty());
}

fn refusal(model: &LoadedModel, r: &Reference, prompt: &str, files: Vec<PathBuf>) -> String {
    let req = Request {
        lora_files: files,
        ..request(r, prompt)
    };
    let e = try_run(model, &req).expect_err("refused").to_string();
    assert!(!e.contains('\n'), "not one line: {e}");
    e
}

/// A LoRA for another family, one whose layers match nothing, a file that is not a LoRA,
/// a truncated or empty file, a name found twice: one line each, and the model still makes
/// the same picture (nothing merged half-way, the LoRA applied before still applied).
#[test]
fn loras_that_do_not_fit_are_refused_and_change_nothing() {
    let cases = cases();
    let kohya = cases.loras.iter().find(|c| c.file == "sd1-kohya.safetensors").unwrap();
    let r = &kohya.references[0];
    let model = load_model(&kohya.model);
    let with_lora = tagged(&r.prompt, &kohya.file, 1.0);
    let before = run(&model, &request(r, &with_lora)).remove(0);

    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(lora_dir().join(&kohya.file)).unwrap();
    std::fs::write(tmp.path().join("cut.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(tmp.path().join("empty.safetensors"), b"").unwrap();
    std::fs::copy(
        fixtures().join("sd1-tiny/vae/diffusion_pytorch_model.safetensors"),
        tmp.path().join("a-vae.safetensors"),
    )
    .unwrap();
    let twin = tmp.path().join("twin");
    std::fs::create_dir(&twin).unwrap();
    std::fs::copy(lora_dir().join(&kohya.file), twin.join(&kohya.file)).unwrap();
    let mut extra = lora_files();
    extra.extend(
        ["cut", "empty", "a-vae"]
            .iter()
            .map(|n| tmp.path().join(format!("{n}.safetensors"))),
    );

    let sdxl_on_sd1 = refusal(&model, r, &format!("{with_lora} <lora:sdxl-kohya:1>"), extra.clone());
    assert!(
        sdxl_on_sd1.contains("LoRA `sdxl-kohya`") && sdxl_on_sd1.contains("made for"),
        "{sdxl_on_sd1}"
    );
    let nomatch = refusal(&model, r, &tagged(&r.prompt, &cases.nomatch.file, 1.0), extra.clone());
    assert!(nomatch.contains("none of its 3 layers matches"), "{nomatch}");
    let not_lora = refusal(&model, r, &format!("{} <lora:a-vae:1>", r.prompt), extra.clone());
    assert!(not_lora.contains("is not a LoRA"), "{not_lora}");
    let cut = refusal(&model, r, &format!("{} <lora:cut:1>", r.prompt), extra.clone());
    assert!(cut.contains("truncated"), "{cut}");
    let empty = refusal(&model, r, &format!("{} <lora:empty:1>", r.prompt), extra.clone());
    assert!(empty.contains("LoRA `empty`") && empty.contains("0 bytes"), "{empty}");
    let missing = refusal(&model, r, &format!("{} <lora:nowhere:1>", r.prompt), extra.clone());
    assert!(missing.contains("LoRA `nowhere`: not found"), "{missing}");
    let mut twins = lora_files();
    twins.push(twin.join(&kohya.file));
    let ambiguous = refusal(&model, r, &with_lora, twins);
    assert!(ambiguous.contains("two files have this name"), "{ambiguous}");

    // The LoRA applied before every refusal is still exactly in place.
    let applied = model.lora.applied();
    assert_eq!(applied.len(), 1, "{applied:?}");
    let after = run(&model, &request(r, &with_lora)).remove(0);
    assert_eq!(after, before);
}

/// A LoRA on a single-file checkpoint (names mapped from the LDM layout) merges the same as on
/// the diffusers folder of the same weights, also when the file borrows its text encoder.
#[test]
fn a_single_file_checkpoint_takes_the_same_lora() {
    let cases = cases();
    let kohya = cases.loras.iter().find(|c| c.file == "sd1-kohya.safetensors").unwrap();
    let single = fixtures().join("single-file/sd1/sd1-tiny.safetensors");
    if !single.is_file() {
        panic!("missing {}", single.display());
    }
    let r = &kohya.references[0];
    let prompt = tagged(&r.prompt, &kohya.file, 1.0);
    let folder = run(&load_model(&kohya.model), &request(r, &prompt)).remove(0);
    let file = run(&load(&single), &request(r, &prompt)).remove(0);
    let (max, _) = pixel_diff(&folder, &file);
    assert!(max <= 1, "single file vs folder with the same LoRA: {max}/255");

    // A file without its text encoder, using the folder's: the LoRA's text-encoder layers
    // patch the borrowed encoder the same way.
    assert!(kohya.targets.iter().any(|t| t.component == "text_encoder"));
    let tmp = tempfile::tempdir().unwrap();
    let notext = tmp.path().join("notext.safetensors");
    rewrite_safetensors(&single, &notext, |n| {
        (!n.starts_with("cond_stage_model.")).then(|| n.to_string())
    });
    let options = lantern::model::LoadOptions {
        text_encoders: Some(fixtures().join(&kohya.model)),
        ..Default::default()
    };
    let borrowed = LoadedModel::load(&notext, options, &mut |_| {}).unwrap();
    let with_borrowed = run(&borrowed, &request(r, &prompt)).remove(0);
    let (max, _) = pixel_diff(&folder, &with_borrowed);
    assert!(
        max <= 1,
        "borrowed text encoder vs folder with the same LoRA: {max}/255"
    );
    let applied = borrowed.lora.applied();
    assert_eq!(applied[0].layers, kohya.targets.len(), "{applied:?}");
}

/// Layers that name nothing in the model are skipped, as A1111 does, and said so; the rest
/// apply as they would alone.
#[test]
fn layers_that_match_nothing_are_skipped_and_reported() {
    let cases = cases();
    let kohya = cases.loras.iter().find(|c| c.file == "sd1-kohya.safetensors").unwrap();
    let r = &kohya.references[0];
    let tmp = tempfile::tempdir().unwrap();
    let mut tensors = candle_core::safetensors::load(lora_dir().join(&kohya.file), &Device::Cpu).unwrap();
    let first = kohya.targets[0].prefix.clone();
    for suffix in [".lora_down.weight", ".lora_up.weight"] {
        let t = tensors[&format!("{first}{suffix}")].clone();
        tensors.insert(format!("lora_unet_no_such_block_0_to_q{suffix}"), t);
    }
    let path = tmp.path().join("extra.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();

    let model = load_model(&kohya.model);
    let req = Request {
        lora_files: vec![path],
        ..request(r, &format!("{} <lora:extra:1>", r.prompt))
    };
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let (mut warned, mut images) = (Vec::new(), Vec::new());
    pipeline::generate(&model, &req, &cancel, &mut |e| match e {
        Event::LoraPartlyApplied { name, skipped, total } => warned.push((name, skipped, total)),
        Event::ImageReady(g) => images.push(g.image),
        _ => {}
    })
    .unwrap();
    assert_eq!(warned, vec![("extra".to_string(), 1, kohya.targets.len() + 1)]);
    let alone = run(&model, &request(r, &tagged(&r.prompt, &kohya.file, 1.0))).remove(0);
    assert_eq!(images[0], alone);
}
