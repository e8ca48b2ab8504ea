//! The LoRA browser, driven like a user would (kittest): the data folder's `loras/` is listed
//! with each file's family; a click writes `<lora:NAME:W>` into the prompt at the slider's
//! weight and a second click changes that weight; an SDXL LoRA is refused on an SD 1.x model
//! with the reason; the picture made with the tag records its `Lora hashes`; a restored
//! picture's missing LoRAs are named; previews beside the files are shown.

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::copy_dir;
use common::gui::{DroppedPath, wait_for, window};
use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use lantern::gui::LanternApp;
use lantern::gui::models_state::ScanState;
use lantern::gui::state::{ModelStatus, StatusKind};
use support::fixtures;

/// A data folder with the two kohya fixture LoRAs in its `loras/`, and a copy of the SD 1.x
/// fixture model inside it (the fixtures folder has its own `loras/` beside the model, which
/// the scan would also list).
fn data_with_loras() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let loras = tmp.path().join("loras");
    std::fs::create_dir_all(&loras).unwrap();
    for name in ["sd1-kohya.safetensors", "sdxl-kohya.safetensors"] {
        std::fs::copy(fixtures().join("loras").join(name), loras.join(name)).unwrap();
    }
    let model = tmp.path().join("models-here").join("sd1-tiny");
    copy_dir(&fixtures().join("sd1-tiny"), &model);
    (tmp, model)
}

fn harness(data_dir: &Path, model: Option<&Path>) -> Harness<'static, LanternApp> {
    window(data_dir)
        .model(model.map(Path::to_path_buf))
        .size(1300.0, 850.0)
        .build()
}

/// Model loaded and both LoRAs listed.
fn ready(h: &mut Harness<'_, LanternApp>) {
    wait_for(h, "the model and the LoRA scan", |a| {
        matches!(a.state.model, ModelStatus::Ready(_))
            && a.state.models.scan == ScanState::Done
            && a.state.models.loras.len() == 2
    });
}

fn prompt(h: &Harness<'_, LanternApp>) -> String {
    h.state().state.settings.params.prompt.clone()
}

fn status(h: &Harness<'_, LanternApp>) -> (StatusKind, String) {
    let s = h.state().state.status.clone().expect("a status line");
    (s.kind, s.text)
}

/// The text of the one label that contains `part` (a label's text is its value).
fn text_of(h: &Harness<'_, LanternApp>, part: &str) -> String {
    let node = h.get_by_label_contains(part);
    let node = node.accesskit_node();
    node.value().or_else(|| node.label()).unwrap_or_default()
}

fn open_browser(h: &mut Harness<'_, LanternApp>) {
    h.get_by_label("LoRAs").click();
    h.run_steps(3);
    assert!(h.state().state.settings.loras_open);
    h.get_by_label("LoRA browser");
}

#[test]
fn clicking_a_lora_adds_its_tag_then_changes_its_weight_and_other_families_are_refused() {
    let (tmp, model) = data_with_loras();
    let mut h = harness(tmp.path(), Some(&model));
    ready(&mut h);
    open_browser(&mut h);
    h.get_by_label("2 LoRAs found");
    // Each with its family and size; the SDXL one says it does not fit this model.
    h.get_by_label("sd1-kohya");
    h.get_by_label("sdxl-kohya");
    assert_eq!(text_of(&h, "SD 1.x · "), "SD 1.x · 172 kB");
    assert_eq!(text_of(&h, "SDXL · "), "SDXL · 237 kB · not for this model");

    h.state_mut().state.settings.params.prompt = "a red fox".into();
    h.state_mut().state.settings.lora_weight = 0.6;
    h.run_steps(2);
    h.get_by_label("sd1-kohya").click();
    h.run_steps(2);
    assert_eq!(prompt(&h), "a red fox <lora:sd1-kohya:0.6>");
    // Shown as used, with its weight.
    h.get_by_label("In this prompt");
    h.get_by_label("sd1-kohya 0.6");

    // Again with another weight: the tag's weight changes, no second tag.
    h.state_mut().state.settings.lora_weight = -0.35;
    h.run_steps(2);
    h.get_by_label("sd1-kohya").click();
    h.run_steps(2);
    assert_eq!(prompt(&h), "a red fox <lora:sd1-kohya:-0.35>");
    h.get_by_label("sd1-kohya -0.35");

    // The SDXL LoRA on this SD 1.x model: not added, and the reason is shown.
    h.get_by_label("sdxl-kohya").click();
    h.run_steps(2);
    assert_eq!(prompt(&h), "a red fox <lora:sd1-kohya:-0.35>");
    let (kind, text) = status(&h);
    assert_eq!(kind, StatusKind::Warning);
    assert!(
        text.contains("sdxl-kohya") && text.contains("made for SDXL; this model is SD 1.x"),
        "{text}"
    );

    // ✖ takes the tag out again (and the space before it).
    h.get_by_label("✖").click();
    h.run_steps(2);
    assert_eq!(prompt(&h), "a red fox");
    assert!(h.query_by_label("In this prompt").is_none());

    // The browser stays open next time.
    let settings = lantern::gui::settings::Settings::load(&tmp.path().join("settings.json"));
    assert!(settings.loras_open);
}

#[test]
fn a_picture_made_with_a_browser_tag_records_the_lora_hash() {
    let (tmp, model) = data_with_loras();
    let mut h = harness(tmp.path(), Some(&model));
    ready(&mut h);
    open_browser(&mut h);
    {
        let s = &mut h.state_mut().state.settings;
        s.params.prompt = "a lighthouse".into();
        s.params.width = 64;
        s.params.height = 64;
        s.params.steps = 4;
        s.lora_weight = 0.6;
    }
    h.run_steps(2);
    h.get_by_label("sd1-kohya").click();
    h.run_steps(2);
    assert_eq!(prompt(&h), "a lighthouse <lora:sd1-kohya:0.6>");
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    h.step();
    wait_for(&mut h, "the image", |a| a.is_idle());
    let app = h.state();
    let path = app
        .state
        .images
        .first()
        .and_then(|i| i.path.clone())
        .unwrap_or_else(|| panic!("no saved picture; status {:?}", app.state.status));
    let text = lantern::output::read_parameters_file(&path).unwrap().unwrap();
    assert!(text.starts_with("a lighthouse <lora:sd1-kohya:0.6>\n"), "{text}");
    assert!(text.contains(r#"Lora hashes: "sd1-kohya: 82bd49700770""#), "{text}");
}

#[test]
fn restoring_a_picture_names_the_loras_that_are_missing() {
    let (tmp, _) = data_with_loras();
    let mut h = harness(tmp.path(), None);
    wait_for(&mut h, "the scan", |a| a.state.models.scan == ScanState::Done);
    let parameters = "a fox <lora:sd1-kohya:0.5>, <lora:ink wash:0.8> <lora:Gone_v2:1>\n\
                      Steps: 4, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 64x64";
    let img = lantern::output::RgbImage::from_raw(8, 8, vec![120; 192]).unwrap();
    let png = tmp.path().join("with-loras.png");
    std::fs::write(&png, lantern::output::png::encode_png(&img, Some(parameters)).unwrap()).unwrap();
    h.input_mut().dropped_files.push(Arc::new(DroppedPath(png)));
    h.step();
    wait_for(&mut h, "the restore", |a| a.state.settings.params.seed == 1234);
    // Restored all the same, with the missing ones named and where to put them.
    assert_eq!(
        prompt(&h),
        "a fox <lora:sd1-kohya:0.5>, <lora:ink wash:0.8> <lora:Gone_v2:1>"
    );
    let (kind, text) = status(&h);
    assert_eq!(kind, StatusKind::Warning);
    assert!(text.contains("with-loras.png"), "the restore is still said: {text}");
    let folder = tmp.path().join("loras").display().to_string();
    assert!(
        text.contains(&format!("Missing LoRAs: ink wash, Gone_v2 — put them in {folder}")),
        "{text}"
    );

    // The browser marks them too.
    open_browser(&mut h);
    h.get_by_label("sd1-kohya 0.5");
    h.get_by_label("ink wash 0.8");
}

#[test]
fn previews_beside_the_files_are_shown_and_an_empty_folder_says_where_to_put_loras() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(tmp.path(), None);
    h.state_mut().state.settings.loras_open = true;
    wait_for(&mut h, "the scan", |a| a.state.models.scan == ScanState::Done);
    h.get_by_label("No LoRA files found.");
    let folder = tmp.path().join("loras").display().to_string();
    h.get_by_label_contains(&folder);

    // Files added, Rescan: listed, and a preview beside one is loaded off the UI thread.
    let loras = tmp.path().join("loras");
    std::fs::create_dir_all(&loras).unwrap();
    std::fs::copy(
        fixtures().join("loras/sd1-kohya.safetensors"),
        loras.join("sd1-kohya.safetensors"),
    )
    .unwrap();
    let img = lantern::output::RgbImage::from_raw(32, 24, vec![200; 32 * 24 * 3]).unwrap();
    let preview = loras.join("sd1-kohya.preview.png");
    std::fs::write(&preview, lantern::output::png::encode_png(&img, None).unwrap()).unwrap();
    h.get_by_label("Rescan").click();
    wait_for(&mut h, "the LoRA listed", |a| a.state.models.loras.len() == 1);
    assert_eq!(
        h.state().state.models.loras[0].preview.as_deref(),
        Some(preview.as_path())
    );
    wait_for(&mut h, "the preview", |a| a.state.loras.preview_shown(&preview));
    h.get_by_label("sd1-kohya");
}
