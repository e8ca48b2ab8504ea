//! The window's behaviour with a real fixture model, driven like a user would (kittest):
//! type a prompt, Ctrl+Enter, wait, see the picture and find the PNG; cancel; queue; errors.

mod common;
mod support;

use std::path::Path;

use common::gui::{wait_for, window};
use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lantern::gui::LanternApp;
use lantern::gui::state::ModelStatus;
use support::{copy_dir, fixtures, rewrite_safetensors};

fn harness(data_dir: &Path, model: Option<&Path>) -> Harness<'static, LanternApp> {
    window(data_dir)
        .model(model.map(Path::to_path_buf))
        .size(1200.0, 800.0)
        .build()
}

fn small_settings(h: &mut Harness<'_, LanternApp>) {
    let p = &mut h.state_mut().state.settings.params;
    p.width = 64;
    p.height = 64;
    p.steps = 4;
}

fn outputs(data_dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(data_dir.join("outputs"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "png"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn type_prompt_ctrl_enter_shows_image_and_saves_png() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(tmp.path(), Some(&fixtures().join("sd1-tiny")));
    wait_for(&mut h, "model load", |a| matches!(a.state.model, ModelStatus::Ready(_)));
    small_settings(&mut h);
    h.run_steps(2);
    // The prompt box has keyboard focus at start: typing goes there.
    h.get_by_label("Prompt").type_text("a red fox in the snow");
    h.step();
    assert_eq!(h.state().state.settings.params.prompt, "a red fox in the snow");
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    h.step();
    assert!(h.state().state.running.is_some(), "Ctrl+Enter starts a job");
    assert_eq!(
        h.state().state.settings.params.prompt,
        "a red fox in the snow",
        "no newline inserted"
    );
    wait_for(&mut h, "the image", |a| a.is_idle());

    let app = h.state();
    assert_eq!(app.state.images.len(), 1, "status: {:?}", app.state.status);
    let shown = &app.state.images[0];
    assert_eq!((shown.pixels.width, shown.pixels.height), (64, 64));
    let path = shown.path.clone().expect("saved");
    assert!(path.starts_with(tmp.path().join("outputs")));
    let text = lantern::output::read_parameters_file(&path).unwrap().unwrap();
    assert!(text.starts_with("a red fox in the snow\n"), "{text}");
    assert_eq!(outputs(tmp.path()).len(), 1);
    // And it is in the history.
    let history = lantern::history::History::open(&tmp.path().join("history.sqlite3")).unwrap();
    assert_eq!(history.count(&Default::default()).unwrap(), 1);
}

#[test]
fn cancel_mid_run_and_queue_two_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(tmp.path(), Some(&fixtures().join("sd1-tiny")));
    wait_for(&mut h, "model load", |a| matches!(a.state.model, ModelStatus::Ready(_)));
    {
        let p = &mut h.state_mut().state.settings.params;
        p.prompt = "a slow one".into();
        p.width = 256;
        p.height = 256;
        p.steps = 400;
    }
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    wait_for(&mut h, "a few steps", |a| {
        a.state.running.as_ref().is_some_and(|r| r.step >= 2)
    });
    h.key_press(Key::Escape);
    wait_for(&mut h, "the cancel", |a| a.is_idle());
    assert!(outputs(tmp.path()).is_empty(), "a cancelled job writes nothing");
    assert!(
        h.state()
            .state
            .status
            .as_ref()
            .is_some_and(|s| s.text.contains("Cancelled"))
    );

    // Two jobs: the second waits in the queue and then runs.
    small_settings(&mut h);
    h.state_mut().state.settings.params.prompt = "first".into();
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    h.step();
    h.state_mut().state.settings.params.prompt = "second".into();
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    h.step();
    assert!(h.state().state.running.is_some());
    wait_for(&mut h, "both jobs", |a| a.is_idle());
    let mut prompts: Vec<String> = outputs(tmp.path())
        .iter()
        .map(|p| {
            lantern::output::read_parameters_file(p)
                .unwrap()
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    prompts.sort();
    assert_eq!(prompts, vec!["first".to_string(), "second".to_string()]);
}

#[test]
fn a_broken_model_shows_its_error_and_the_window_keeps_working() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken-model");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("model_index.json"),
        r#"{"_class_name": "KandinskyPipeline"}"#,
    )
    .unwrap();
    let mut h = harness(tmp.path(), Some(&broken));
    wait_for(&mut h, "the load to fail", |a| {
        matches!(a.state.model, ModelStatus::Failed { .. })
    });
    let message = match &h.state().state.model {
        ModelStatus::Failed { message, .. } => message.clone(),
        _ => unreachable!(),
    };
    assert!(
        message.contains("model_index.json") && message.contains("_class_name"),
        "{message}"
    );
    // Generating with it fails readably, and choosing a good model afterwards works.
    h.state_mut().state.settings.params.prompt = "x".into();
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    wait_for(&mut h, "the failed job", |a| a.is_idle());
    assert!(
        h.state()
            .state
            .status
            .as_ref()
            .is_some_and(|s| s.text.contains("_class_name"))
    );
    h.state_mut()
        .handle_action(lantern::gui::state::Action::ChooseModel(fixtures().join("sd1-tiny")));
    wait_for(&mut h, "the good model", |a| {
        matches!(a.state.model, ModelStatus::Ready(_))
    });
    small_settings(&mut h);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    wait_for(&mut h, "an image", |a| a.is_idle() && !a.state.images.is_empty());
    assert_eq!(outputs(tmp.path()).len(), 1);
}

#[test]
fn bad_size_is_refused_with_a_message_not_queued() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(tmp.path(), Some(&fixtures().join("sd1-tiny")));
    wait_for(&mut h, "model load", |a| matches!(a.state.model, ModelStatus::Ready(_)));
    // A width that is not a multiple of 8 (e.g. from settings edited by hand).
    h.state_mut().state.settings.params.width = 500;
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    h.step();
    assert!(h.state().state.running.is_none() && h.state().state.queue.is_empty());
    let status = h.state().state.status.clone().map(|s| s.text).unwrap_or_default();
    assert!(status.contains("multiple of 8"), "{status}");
}

/// Ctrl+Up / Ctrl+Down in the prompt box weigh the word at the cursor, as in A1111.
#[test]
fn ctrl_up_and_down_change_the_emphasis_of_the_word_at_the_cursor() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(tmp.path(), None);
    h.run_steps(2);
    h.get_by_label("Prompt").type_text("a red fox");
    h.step();
    let prompt = |h: &Harness<'_, LanternApp>| h.state().state.settings.params.prompt.clone();
    h.key_press_modifiers(Modifiers::COMMAND, Key::ArrowUp);
    h.step();
    assert_eq!(prompt(&h), "a red (fox:1.1)");
    h.key_press_modifiers(Modifiers::COMMAND, Key::ArrowUp);
    h.step();
    assert_eq!(prompt(&h), "a red (fox:1.2)", "the selection stays on the word");
    for _ in 0..2 {
        h.key_press_modifiers(Modifiers::COMMAND, Key::ArrowDown);
        h.step();
    }
    assert_eq!(prompt(&h), "a red fox", "back at 1.0 the brackets go");
    h.key_press_modifiers(Modifiers::COMMAND, Key::ArrowDown);
    h.step();
    assert_eq!(prompt(&h), "a red (fox:0.9)");
}

/// The language picker switches the whole window at once (no restart), and the choice is
/// remembered for the next start.
#[test]
fn switching_to_chinese_relabels_the_window_and_is_remembered() {
    let tmp = tempfile::tempdir().unwrap();
    // CI machines have no CJK font: the labels are checked through accessibility, and the
    // glyphs may be boxes here (screenshots with a real font are in docs/).
    let chinese_window = || window(tmp.path()).size(1200.0, 800.0).allow_missing_glyphs().build();
    let mut h = chinese_window();
    h.run_steps(2);
    h.get_by_label("Prompt");
    h.get_by_label("🌐").click();
    h.run_steps(2);
    h.get_by_label("简体中文").click();
    h.run_steps(3);
    assert_eq!(h.state().state.catalog.code(), "zh-CN");
    // The parameters panel, the tabs and the first screen speak Chinese now.
    h.get_by_label("提示词");
    h.get_by_label("反向提示词");
    h.get_by_label("采样器");
    h.get_by_label("历史记录");
    h.get_by_label_contains("欢迎使用 Lantern");
    assert!(h.query_by_label("Prompt").is_none(), "no English label left behind");
    let settings = lantern::gui::settings::Settings::load(&tmp.path().join("settings.json"));
    assert_eq!(settings.language.as_deref(), Some("zh-CN"));
    drop(h);

    // The next start opens in Chinese whatever the system's language.
    let mut h = chinese_window();
    h.run_steps(2);
    h.get_by_label("提示词");
}

/// The About window says the version, the build's devices and the data folder.
#[test]
fn about_shows_version_devices_and_data_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(tmp.path(), None);
    h.run_steps(2);
    h.get_by_label("About").click();
    h.run_steps(4);
    assert!(h.state().state.about_open);
    h.get_by_label_contains(&format!("Lantern {}", env!("CARGO_PKG_VERSION")));
    h.get_by_label(&tmp.path().display().to_string());
    h.get_by_label_contains("CPU (");
}

/// The token counter counts A1111's way ("82/150": two chunks, weights are not tokens) and
/// warns once plain syntax cuts the prompt; the Advanced settings set syntax, clip skip and
/// noise source, and the picture's PNG text records them.
#[test]
fn token_counter_and_advanced_settings_reach_the_picture() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(tmp.path(), Some(&fixtures().join("sd1-tiny")));
    wait_for(&mut h, "model load", |a| matches!(a.state.model, ModelStatus::Ready(_)));
    wait_for(&mut h, "the tokenizer", |a| a.state.tokenizer.is_some());
    small_settings(&mut h);
    h.run_steps(2);
    h.get_by_label("Prompt").type_text(&vec!["(fox:1.2)"; 82].join(" "));
    h.run_steps(2);
    h.get_by_label("82/150 tokens");

    h.get_by_label("Advanced").click();
    h.run_steps(2);
    h.get_by_label("Prompt syntax").click();
    h.run_steps(2);
    h.get_by_label("Plain (diffusers)").click();
    h.run_steps(2);
    let p = &h.state().state.settings.params;
    assert_eq!(p.prompt_syntax, lantern::recipe::PromptSyntax::Plain);
    h.get_by_label_contains("/75 tokens — the rest is ignored");
    h.get_by_label("Advanced (changed)");

    h.get_by_label("Noise source").click();
    h.run_steps(2);
    h.get_by_label("CPU (diffusers, ComfyUI)").click();
    h.run_steps(2);
    // A click on a number field edits it as text, all of it selected.
    h.get_by_label("Clip skip").click();
    h.run_steps(2);
    h.event(egui::Event::Text("2".into()));
    h.key_press(Key::Enter);
    h.run_steps(2);
    let p = &h.state().state.settings.params;
    assert_eq!((p.rng, p.clip_skip), (lantern::recipe::NoiseKind::Cpu, 2));

    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    h.step();
    wait_for(&mut h, "the image", |a| a.is_idle());
    let path = h.state().state.images[0].path.clone().expect("saved");
    let text = lantern::output::read_parameters_file(&path).unwrap().unwrap();
    for field in ["Clip skip: 2", "RNG: CPU", "Prompt syntax: plain"] {
        assert!(text.contains(field), "{field} in {text}");
    }
}

/// A single file without a VAE cannot load; a VAE file found beside it, chosen under ⚙, loads
/// it, is remembered for that model, and is named in the picture's PNG text.
#[test]
fn a_vae_chosen_for_a_model_is_used_remembered_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("my-models");
    std::fs::create_dir_all(&models).unwrap();
    let checkpoint = fixtures().join("single-file/sd1/sd1-tiny.safetensors");
    let model = models.join("novae.safetensors");
    rewrite_safetensors(&checkpoint, &model, |n| {
        (!n.starts_with("first_stage_model.")).then(|| n.to_string())
    });
    rewrite_safetensors(&checkpoint, &models.join("tiny.vae.safetensors"), |n| {
        n.strip_prefix("first_stage_model.").map(str::to_string)
    });
    let mut h = harness(tmp.path(), Some(&model));
    wait_for(&mut h, "the failed load and the scan", |a| {
        matches!(a.state.model, ModelStatus::Failed { .. }) && !a.state.models.vaes.is_empty()
    });
    small_settings(&mut h);
    h.get_by_label("⚙").click();
    h.run_steps(2);
    h.get_by_label("VAE").click();
    h.run_steps(2);
    h.get_by_label("tiny.vae.safetensors").click();
    h.run_steps(2);
    wait_for(&mut h, "the model with its VAE", |a| {
        matches!(a.state.model, ModelStatus::Ready(_))
    });
    let settings = std::fs::read_to_string(tmp.path().join("settings.json")).unwrap();
    assert!(settings.contains("tiny.vae.safetensors"), "{settings}");

    h.get_by_label("Prompt").type_text("a lighthouse");
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    h.step();
    wait_for(&mut h, "the image", |a| a.is_idle());
    let path = h.state().state.images[0].path.clone().expect("saved");
    let text = lantern::output::read_parameters_file(&path).unwrap().unwrap();
    assert!(text.contains("VAE: tiny.vae.safetensors"), "{text}");
    assert!(text.contains("Model: novae"), "{text}");
}

/// A checkpoint without a VAE, and a diffusers model of its family installed: the window loads it
/// with that model's VAE once the scan has found it (the first load, before the scan, fails),
/// says so under ⚙, and the picture names the VAE.
#[test]
fn a_checkpoint_without_a_vae_borrows_its_familys_in_the_window() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("my-models");
    std::fs::create_dir_all(&models).unwrap();
    let model = models.join("novae.safetensors");
    rewrite_safetensors(&fixtures().join("single-file/sd1/sd1-tiny.safetensors"), &model, |n| {
        (!n.starts_with("first_stage_model.")).then(|| n.to_string())
    });
    // Installed the usual way: in Lantern's own models folder.
    copy_dir(&fixtures().join("sd1-tiny"), &tmp.path().join("models/sd1-tiny"));
    let mut env = lantern::gui::models_state::ModelsEnv::isolated(&tmp.path().join("hf-cache"), "http://127.0.0.1:9");
    env.roots.data_dir_models = Some(tmp.path().join("models"));
    let mut h = window(tmp.path())
        .model(model.clone())
        .models_env(env)
        .size(1200.0, 800.0)
        .build();
    wait_for(&mut h, "the model with the borrowed VAE", |a| {
        matches!(a.state.model, ModelStatus::Ready(_))
    });
    let status = h.state().state.status.clone().map(|s| s.text).unwrap_or_default();
    assert!(status.contains("VAE: sd1-tiny's (this file has none)"), "{status}");
    small_settings(&mut h);
    h.get_by_label("⚙").click();
    h.run_steps(2);
    // The VAE box says whose VAE it decodes with.
    h.get_by_value("sd1-tiny's (this file has none)");
    h.get_by_label("Prompt").type_text("a lighthouse");
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    h.step();
    wait_for(&mut h, "the image", |a| a.is_idle());
    let path = h.state().state.images[0].path.clone().expect("saved");
    let text = lantern::output::read_parameters_file(&path).unwrap().unwrap();
    assert!(text.contains("VAE: sd1-tiny/vae"), "{text}");
    // Nothing was written into the model's choices: the borrowing follows what is installed.
    assert_eq!(h.state().state.settings.choice_for(&model).vae, None);
}
