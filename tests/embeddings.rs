//! Textual-inversion embeddings on the tiny fixtures (tools/make_embedding_fixtures.py):
//! written by name in the prompt or the negative prompt, one or several, SD 1 and SDXL, in
//! both prompt syntaxes, against diffusers' `load_textual_inversion` (≤ 3/255).

mod support;

use std::path::PathBuf;

use lantern::model::LoadedModel;
use lantern::pipeline::{self, Event, Request};
use lantern::recipe::PromptSyntax;
use serde::Deserialize;
use support::*;

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    png: String,
    baseline_png: String,
    /// For SDXL: diffusers' picture with the pooled output taken at the end-of-text token,
    /// as A1111 (and Lantern) take it; diffusers itself pools at the embedding's last id.
    a1111_png: Option<String>,
    model: String,
    prompt: String,
    negative_prompt: String,
    steps: u32,
    guidance: f64,
    width: u32,
    height: u32,
    latents: String,
    scheduler: String,
}

fn dir() -> PathBuf {
    fixtures().join("embeddings")
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(dir().join("cases.json")).unwrap();
    serde_json::from_str::<Cases>(&text).unwrap().cases
}

fn embedding_files() -> Vec<PathBuf> {
    ["lanternstyle", "lanternone", "lanternxl"]
        .iter()
        .map(|n| dir().join(format!("{n}.safetensors")))
        .collect()
}

fn request(c: &Case, syntax: PromptSyntax, files: Vec<PathBuf>) -> Request {
    let case = ReferenceCase {
        file: c.png.clone(),
        scheduler: c.scheduler.clone(),
        height: c.height,
        width: c.width,
        guidance: c.guidance,
        prompt: c.prompt.clone(),
        negative_prompt: Some(c.negative_prompt.clone()),
        steps: c.steps,
        latents: c.latents.clone(),
    };
    let mut req = request_for(&case);
    req.recipe.prompt_syntax = syntax;
    req.embedding_files = files;
    req
}

fn try_run(model: &LoadedModel, req: &Request) -> lantern::error::Result<Vec<lantern::output::RgbImage>> {
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let mut out = Vec::new();
    pipeline::generate(model, req, &cancel, &mut |e| {
        if let Event::ImageReady(g) = e {
            out.push(g.image);
        }
    })?;
    Ok(out)
}

/// Each case in both syntaxes (an unweighted prompt reads the same in both) equals diffusers'
/// picture; without the files the names are plain words and give diffusers' baseline.
#[test]
fn embeddings_match_diffusers_load_textual_inversion() {
    let mut report = Vec::new();
    for c in cases() {
        let model = load_model(&c.model);
        let reference = read_png(&dir().join(c.a1111_png.as_ref().unwrap_or(&c.png)));
        for syntax in [PromptSyntax::A1111, PromptSyntax::Plain] {
            let ours = try_run(&model, &request(&c, syntax, embedding_files()))
                .unwrap()
                .remove(0);
            let (max, mean) = pixel_diff(&ours, &reference);
            report.push(format!("{} ({syntax:?}): max {max}/255, mean {mean:.3}", c.png));
            assert!(max <= 3, "{}", report.last().unwrap());
        }
        let without = try_run(&model, &request(&c, PromptSyntax::Plain, Vec::new()))
            .unwrap()
            .remove(0);
        let baseline = read_png(&dir().join(&c.baseline_png));
        let (max, _) = pixel_diff(&without, &baseline);
        assert!(
            max <= 3,
            "{} without the embedding: {max}/255 from diffusers' baseline",
            c.png
        );
        let (_, changed) = pixel_diff(&baseline, &reference);
        assert!(
            changed > 3.0,
            "{}: the embedding changes the picture by only {changed}",
            c.png
        );
    }
    println!("{}", report.join("\n"));
}

/// An embedding for another family, a file that is not an embedding, and two files with one
/// name: one line each, naming the embedding.
#[test]
fn embeddings_that_do_not_fit_are_refused() {
    let all = cases();
    let sd1 = all.iter().find(|c| c.png == "sd1-lanternstyle.png").unwrap();
    let model = load_model(&sd1.model);
    let refused = |prompt: &str, files: Vec<PathBuf>| -> String {
        let mut req = request(sd1, PromptSyntax::A1111, files);
        req.recipe.prompt = prompt.to_string();
        let e = try_run(&model, &req).unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
        e
    };
    let e = refused("a lighthouse in lanternxl", embedding_files());
    assert!(
        e.starts_with("embedding `lanternxl`: made for a model with 2 text encoders"),
        "{e}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let lora = fixtures().join("loras/sd1-kohya.safetensors");
    std::fs::copy(&lora, tmp.path().join("notone.safetensors")).unwrap();
    let e = refused("notone harbour", vec![tmp.path().join("notone.safetensors")]);
    assert!(e.contains("is not a textual-inversion embedding"), "{e}");

    std::fs::create_dir(tmp.path().join("b")).unwrap();
    std::fs::copy(
        dir().join("lanternone.safetensors"),
        tmp.path().join("b/lanternone.safetensors"),
    )
    .unwrap();
    let mut twins = embedding_files();
    twins.push(tmp.path().join("b/lanternone.safetensors"));
    let e = refused("lanternone harbour", twins);
    assert!(e.contains("two files have this name"), "{e}");

    // A name inside another word is not the embedding (A1111 matches whole tokens).
    let mut req = request(sd1, PromptSyntax::A1111, embedding_files());
    req.recipe.prompt = "a lighthouse, lanternxlish".into();
    assert!(try_run(&model, &req).is_ok());
}
