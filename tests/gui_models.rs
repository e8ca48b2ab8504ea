//! The window's model journeys, driven through egui_kittest: the first screen with nothing on
//! disk, a model found in a Hugging Face cache, a download from a fake Hub on 127.0.0.1 (and
//! its resumption after a restart), offline, and a broken model folder.
//!
//! Each test gives the app its own data dir, cache and Hub through `ModelsEnv`, never through
//! process-wide environment variables, so the tests can run in parallel.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::gui::{step_until, window};
use common::{Behaviour, COMMIT, FakeHub, REPO_ID, copy_dir, fake_cache_repo, fixture_dir};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use lantern::error::{Failure, Kind};
use lantern::gui::LanternApp;
use lantern::gui::models_state::{DownloadPhase, DownloadView, ModelsEnv, ScanState};
use lantern::gui::state::{ModelStatus, StatusKind};
use lantern::hub::{CancelFlag, Catalog, DownloadRequest, Family, HubConfig};

const UNET: &str = "unet/diffusion_pytorch_model.safetensors";

fn harness(data_dir: &Path, env: ModelsEnv) -> Harness<'static, LanternApp> {
    window(data_dir)
        .models_env(env)
        .size(1400.0, 1000.0)
        // The shared panels use emoji that egui 0.37's default fonts lack (tofu in the app too).
        .allow_missing_glyphs()
        .build()
}

fn scanned(h: &mut Harness<'_, LanternApp>) {
    step_until(h, Duration::from_secs(20), "the first scan", |app| {
        app.state.models.scan == ScanState::Done
    });
}

/// An endpoint where nothing listens: connections are refused at once.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
}

/// The texts of the widgets whose label contains `text` (a `Label`'s text is its value).
fn labels_containing<'a>(h: &'a Harness<'_, LanternApp>, text: &'a str) -> Vec<String> {
    h.query_all_by_label_contains(text)
        .filter_map(|n| {
            let node = n.accesskit_node();
            if node.role() == egui::accesskit::Role::Label {
                node.value()
            } else {
                node.label()
            }
        })
        .collect()
}

fn status_text(app: &LanternApp) -> String {
    app.state.status.as_ref().map(|s| s.text.clone()).unwrap_or_default()
}

#[test]
fn first_screen_without_models_explains_and_offers_the_catalog() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut h = harness(data.path(), ModelsEnv::isolated(cache.path(), &closed_port_url()));
    scanned(&mut h);

    assert!(h.state().state.models.local.is_empty());
    h.get_by_label_contains("there is no model to use yet");
    h.get_by_label_contains("None found");
    // The catalog, the CPU suggestion first, with its size, license and description.
    let buttons = labels_containing(&h, "Download ");
    let catalog_buttons: Vec<&String> = buttons.iter().filter(|l| l.contains(" — ")).collect();
    assert_eq!(catalog_buttons.len(), 5, "{buttons:?}");
    assert_eq!(catalog_buttons[0], "Download SD-Turbo — 2.6 GB");
    h.get_by_label_contains("Suggested for this computer");
    h.get_by_label_contains("License: Stability AI Community License");
    h.get_by_label_contains("usable 512x512 images in 1 step");
    h.get_by_label("Open a model folder…");
    h.get_by_label("Use this folder");
}

#[cfg(unix)]
#[test]
fn cached_fixture_is_listed_as_sd1_and_choosing_it_loads_with_recommended_settings() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    fake_cache_repo(cache.path(), REPO_ID, COMMIT, &fixture_dir("sd1-tiny"));
    let mut h = harness(data.path(), ModelsEnv::isolated(cache.path(), &closed_port_url()));
    scanned(&mut h);

    let local = &h.state().state.models.local;
    assert_eq!(local.len(), 1, "{local:?}");
    assert_eq!((local[0].name.as_str(), local[0].family), (REPO_ID, Family::Sd1));
    h.get_by_label_contains("Hugging Face cache: lantern-test/sd1-tiny");

    // Open the model picker and choose the model from it.
    h.get_by_label("Model").click();
    h.step();
    h.step();
    let item = h.get_by_label_contains("lantern-test/sd1-tiny  ·  SD 1.x");
    assert!(item.accesskit_node().label().unwrap().contains("fp32"), "{item:?}");
    item.click();
    step_until(&mut h, Duration::from_secs(60), "the model to load", |app| {
        !matches!(app.state.model, ModelStatus::Loading { .. } | ModelStatus::None)
    });
    let app = h.state();
    assert!(
        matches!(app.state.model, ModelStatus::Ready(_)),
        "{:?}",
        app.state.model
    );

    // The catalog's settings for SD 1.x were applied, and the status line says so.
    let catalog = Catalog::builtin().unwrap();
    let r = catalog.recommended_for(None, Family::Sd1).unwrap();
    let p = &app.state.settings.params;
    assert_eq!(
        (p.steps, p.guidance as f32, p.width, p.height),
        (r.steps, r.guidance, r.width, r.height)
    );
    assert_eq!(Some(p.sampler), r.sampler_kind());
    let status = status_text(app);
    assert!(
        status.contains("Model ready") && status.contains("recommended settings"),
        "{status}"
    );
    assert!(status.contains(&format!("{} steps", r.steps)), "{status}");
}

#[cfg(unix)]
#[test]
fn download_from_the_hub_shows_progress_and_ends_with_the_model_listed() {
    let hub = FakeHub::sd1_tiny(Behaviour {
        slow: [UNET.to_owned()].into(),
        redirect_lfs: true,
        ..Behaviour::default()
    });
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut h = harness(data.path(), ModelsEnv::isolated(cache.path(), &hub.url()));
    scanned(&mut h);

    let manage = h.get_by_label("Another Hugging Face repo, or manage models…");
    manage.scroll_to_me();
    h.step();
    h.get_by_label("Another Hugging Face repo, or manage models…").click();
    h.run_steps(5);
    assert!(h.state().state.models.manager_open);
    let field = h.get_by_label("Repo id");
    field.focus();
    field.type_text(REPO_ID);
    h.step();
    h.get_by_label("Download repo").click();

    // Mid-way: the total and per-file bars, speed and ETA are on screen.
    step_until(&mut h, Duration::from_secs(20), "progress in the UNet", |app| {
        app.state.models.download(REPO_ID).is_some_and(|d| {
            d.phase == DownloadPhase::Running && d.current_file.as_deref() == Some(UNET) && d.file_done > 0
        })
    });
    let d = h.state().state.models.download(REPO_ID).unwrap().clone();
    assert!(d.done > 0 && d.done < d.total, "{d:?}");
    assert!(!labels_containing(&h, "Downloading lantern-test/sd1-tiny").is_empty());
    let bars = h.query_all_by_role(egui::accesskit::Role::ProgressIndicator).count();
    assert!(bars >= 2, "total and file progress bars, found {bars}");
    assert!(!labels_containing(&h, "/s").is_empty(), "speed shown");
    // The configs and tokenizer files have no LFS hash: the card says they are checked by size.
    assert_eq!(
        labels_containing(&h, "checked by size only"),
        ["9 small files (no hash from the Hub) are checked by size only"]
    );
    let file_line = format!("{UNET} ·");
    let shown = labels_containing(&h, &file_line);
    assert!(
        !shown.is_empty() && shown.iter().all(|l| l.starts_with("file ")),
        "{shown:?}"
    );

    step_until(
        &mut h,
        Duration::from_secs(30),
        "the download to finish and the rescan",
        |app| {
            let m = &app.state.models;
            matches!(
                m.download(REPO_ID).map(|d| &d.phase),
                Some(DownloadPhase::Finished { .. })
            ) && m.scan == ScanState::Done
                && m.local.iter().any(|l| l.name == REPO_ID && l.is_complete())
        },
    );
    assert!(status_text(h.state()).contains("downloaded"));

    // One click on "Use …" chooses it, and it loads.
    // The manager window is on top of the first screen: use its button (the last in the tree).
    h.query_all_by_label("Use lantern-test/sd1-tiny")
        .last()
        .expect("a Use button")
        .scroll_to_me();
    h.step();
    h.query_all_by_label("Use lantern-test/sd1-tiny")
        .last()
        .unwrap()
        .click();
    step_until(&mut h, Duration::from_secs(60), "the downloaded model to load", |app| {
        matches!(app.state.model, ModelStatus::Ready(_) | ModelStatus::Failed { .. })
    });
    assert!(
        matches!(h.state().state.model, ModelStatus::Ready(_)),
        "{:?}",
        h.state().state.model
    );
}

#[cfg(unix)]
#[test]
fn interrupted_download_is_resumed_after_a_restart() {
    let cut = 1_000_000;
    let hub = FakeHub::sd1_tiny(Behaviour {
        drop_after: HashMap::from([(UNET.to_owned(), cut)]),
        ..Behaviour::default()
    });
    let cache = tempfile::tempdir().unwrap();
    // A previous run of the app (or of a Python tool) lost its connection in the UNet.
    let config = HubConfig {
        endpoint: hub.url(),
        token: None,
        cache_dir: cache.path().to_path_buf(),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
    };
    let first = lantern::hub::download(
        &config,
        &DownloadRequest::repo(REPO_ID),
        &CancelFlag::new(),
        &mut |_| {},
    );
    assert!(first.is_err());

    let data = tempfile::tempdir().unwrap();
    let mut h = harness(data.path(), ModelsEnv::isolated(cache.path(), &hub.url()));
    scanned(&mut h);
    let local = &h.state().state.models.local;
    assert!(local.len() == 1 && !local[0].is_complete(), "{local:?}");
    h.get_by_label("Resume download").click();

    step_until(
        &mut h,
        Duration::from_secs(30),
        "the resumed download to finish",
        |app| {
            let m = &app.state.models;
            m.scan == ScanState::Done && m.local.iter().any(|l| l.name == REPO_ID && l.is_complete())
        },
    );
    let d = h.state().state.models.download(REPO_ID).unwrap();
    assert!(d.already >= cut, "resumed with {} bytes already there", d.already);
    let ranges: Vec<_> = hub.seen().into_iter().filter_map(|s| s.range).collect();
    assert!(ranges.contains(&format!("bytes={cut}-")), "{ranges:?}");
}

#[test]
fn refused_connection_is_reported_as_offline_at_once() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut h = harness(data.path(), ModelsEnv::isolated(cache.path(), &closed_port_url()));
    scanned(&mut h);

    let start = Instant::now();
    h.get_by_label("Download SD-Turbo — 2.6 GB").click();
    step_until(&mut h, Duration::from_secs(5), "the download to fail", |app| {
        matches!(
            app.state.models.download("stabilityai/sd-turbo").map(|d| &d.phase),
            Some(DownloadPhase::Failed { .. })
        )
    });
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    let phase = &h.state().state.models.download("stabilityai/sd-turbo").unwrap().phase;
    assert!(
        matches!(phase, DownloadPhase::Failed(f) if f.kind == Kind::Offline),
        "{phase:?}"
    );
    let shown = labels_containing(&h, "You seem to be offline");
    assert!(!shown.is_empty());
    assert!(shown[0].contains("connection refused"), "{shown:?}");
    h.get_by_label("Try again");
    let status = h.state().state.status.clone().unwrap();
    assert_eq!(status.kind, StatusKind::Error);
    assert!(
        status.text.starts_with("SD-Turbo: You seem to be offline"),
        "{}",
        status.text
    );
    // The window keeps drawing and nothing is stuck "downloading".
    assert!(!h.state().state.models.any_download_active());
}

/// The offline card comes from the failure's kind: a message worded like none the client
/// writes today still shows the offline sentence, the line itself below it, and "Try again";
/// the same words with another kind are shown as they are.
#[test]
fn offline_card_is_chosen_by_kind_whatever_the_wording() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut h = harness(data.path(), ModelsEnv::isolated(cache.path(), &closed_port_url()));
    scanned(&mut h);

    let reworded = "The Hub at 127.0.0.1:9 stayed silent (reworded for this test)";
    let mut failed = DownloadView::new("stabilityai/sd-turbo", "sd-turbo", "SD-Turbo");
    failed.phase = DownloadPhase::Failed(Failure::new(Kind::Offline, reworded));
    h.state_mut().state.models.downloads.push(failed);
    h.run_steps(2);
    let headline = labels_containing(&h, "You seem to be offline");
    assert_eq!(
        headline,
        ["SD-Turbo: You seem to be offline: the model server could not be reached."]
    );
    assert_eq!(labels_containing(&h, "stayed silent"), [reworded]);
    h.get_by_label("Try again");

    // Words that once meant offline, on a failure of another kind: shown as they are.
    let server = "stabilityai/sd-turbo unet: cannot reach the end: connection refused (HTTP 503)";
    h.state_mut().state.models.downloads[0].phase = DownloadPhase::Failed(Failure::new(Kind::Network, server));
    h.run_steps(2);
    assert!(labels_containing(&h, "You seem to be offline").is_empty());
    assert_eq!(
        labels_containing(&h, "cannot reach the end"),
        [format!("SD-Turbo: {server}")]
    );
}

#[test]
fn broken_model_folder_shows_which_file_is_wrong() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let broken = models.path().join("broken-model");
    copy_dir(&fixture_dir("sd1-tiny"), &broken);
    let unet = broken.join(UNET);
    let len = fs::metadata(&unet).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&unet)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let mut h = harness(data.path(), ModelsEnv::isolated(cache.path(), &closed_port_url()));
    scanned(&mut h);
    let field = h.get_by_label("or paste its path:");
    field.focus();
    field.type_text(broken.to_str().unwrap());
    h.step();
    h.get_by_label("Use this folder").click();
    step_until(&mut h, Duration::from_secs(60), "the load to fail", |app| {
        matches!(app.state.model, ModelStatus::Failed { .. } | ModelStatus::Ready(_))
    });

    let app = h.state();
    let ModelStatus::Failed { message, kind, .. } = &app.state.model else {
        panic!("a truncated UNet loaded: {:?}", app.state.model);
    };
    assert!(message.contains("diffusion_pytorch_model.safetensors"), "{message}");
    assert_eq!(*kind, Kind::Model, "{message}");
    let status = app.state.status.clone().unwrap();
    assert_eq!(status.kind, StatusKind::Error);
    assert!(
        status.text.starts_with("Could not load broken-model:")
            && status.text.contains("unet/diffusion_pytorch_model.safetensors"),
        "{}",
        status.text
    );
    // The first screen shows the same, and still offers the other ways to get a model.
    let shown = labels_containing(&h, "Could not load broken-model");
    assert!(
        shown
            .iter()
            .any(|l| l.contains("unet/diffusion_pytorch_model.safetensors")),
        "{shown:?}"
    );
    h.get_by_label("Download SD-Turbo — 2.6 GB");
}

#[cfg(unix)]
#[test]
fn cancelled_download_keeps_its_partial_file_and_resumes_from_the_manager() {
    let hub = FakeHub::sd1_tiny(Behaviour {
        slow: [UNET.to_owned()].into(),
        ..Behaviour::default()
    });
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut h = harness(data.path(), ModelsEnv::isolated(cache.path(), &hub.url()));
    scanned(&mut h);
    h.get_by_label("Another Hugging Face repo, or manage models…")
        .scroll_to_me();
    h.step();
    h.get_by_label("Another Hugging Face repo, or manage models…").click();
    h.run_steps(5);
    let field = h.get_by_label("Repo id");
    field.focus();
    field.type_text(REPO_ID);
    h.step();
    h.get_by_label("Download repo").click();
    step_until(&mut h, Duration::from_secs(20), "part of the UNet", |app| {
        app.state
            .models
            .download(REPO_ID)
            .is_some_and(|d| d.current_file.as_deref() == Some(UNET) && d.file_done > 200_000)
    });

    h.get_by_label("Cancel").click();
    step_until(&mut h, Duration::from_secs(10), "the cancellation", |app| {
        matches!(
            app.state.models.download(REPO_ID).map(|d| &d.phase),
            Some(DownloadPhase::Cancelled)
        )
    });
    let partials: Vec<_> = fs::read_dir(cache.path().join("models--lantern-test--sd1-tiny/blobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".incomplete"))
        .map(|e| e.metadata().unwrap().len())
        .collect();
    assert!(matches!(partials[..], [n] if n > 200_000), "{partials:?}");

    h.get_by_label("Resume lantern-test/sd1-tiny").click();
    step_until(&mut h, Duration::from_secs(30), "the resumed download", |app| {
        matches!(
            app.state.models.download(REPO_ID).map(|d| &d.phase),
            Some(DownloadPhase::Finished { .. })
        )
    });
    assert!(h.state().state.models.download(REPO_ID).unwrap().already > 200_000);
    let ranges: Vec<_> = hub.seen().into_iter().filter_map(|s| s.range).collect();
    assert_eq!(ranges.len(), 1, "{ranges:?}");
}

/// Draft decode in the window: greyed while no TAESD is installed for the chosen model's
/// family, "Get taesd" downloads madebyollin/taesd (from the fake Hub) into the cache, the
/// rescan pairs it with the SD 1.x model, and then the checkbox works: the picture is the
/// TAESD's, previews are full-size TAESD pictures, and the PNG says `VAE Decoder: TAESD`.
#[test]
fn draft_decode_offers_the_taesd_download_then_uses_it() {
    let mut files = common::fixture_files(&fixture_dir("taesd/taesd-tiny"));
    files.push(("taesd_decoder.pth".into(), vec![1; 300]));
    let hub = FakeHub::start_as(
        "madebyollin/taesd",
        files,
        Behaviour {
            redirect_lfs: true,
            ..Behaviour::default()
        },
    );
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let model = fake_cache_repo(cache.path(), REPO_ID, COMMIT, &fixture_dir("sd1-tiny"));
    let mut h = window(data.path())
        .model(model)
        .models_env(ModelsEnv::isolated(cache.path(), &hub.url()))
        .size(1400.0, 1000.0)
        .allow_missing_glyphs()
        .build();
    scanned(&mut h);
    step_until(&mut h, Duration::from_secs(60), "the model to load", |app| {
        !matches!(app.state.model, ModelStatus::Loading { .. } | ModelStatus::None)
    });
    assert!(matches!(h.state().state.model, ModelStatus::Ready(_)));

    let check = h.get_by_label("Draft (TAESD)");
    assert!(check.accesskit_node().is_disabled(), "no TAESD yet: greyed");
    let get = h.get_by_label("Get taesd");
    get.scroll_to_me();
    h.step();
    h.get_by_label("Get taesd").click();
    step_until(
        &mut h,
        Duration::from_secs(30),
        "the TAESD download and the rescan",
        |app| {
            let m = &app.state.models;
            matches!(
                m.download("madebyollin/taesd").map(|d| &d.phase),
                Some(DownloadPhase::Finished { .. })
            ) && m.scan == ScanState::Done
                && !m.taesds.is_empty()
        },
    );
    let found = &h.state().state.models.taesds;
    assert_eq!(found[0].name, "madebyollin/taesd");
    assert!(h.query_by_label("Get taesd").is_none());

    let check = h.get_by_label("Draft (TAESD)");
    assert!(!check.accesskit_node().is_disabled());
    check.click();
    h.step();
    assert!(h.state().state.settings.params.draft_decode);
    {
        let p = &mut h.state_mut().state.settings.params;
        (p.width, p.height, p.steps, p.prompt) = (64, 64, 2, "a lighthouse".into());
    }
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Enter);
    h.step();
    // The TAESD changed the load options: the model loads again with it, then runs.
    step_until(&mut h, Duration::from_secs(120), "the picture", |app| {
        app.is_idle() && !app.state.images.is_empty()
    });
    let app = h.state();
    let shown = &app.state.images[0];
    assert!(shown.params.draft_decode, "{:?}", app.state.status);
    let text = lantern::output::read_parameters_file(shown.path.as_ref().unwrap())
        .unwrap()
        .unwrap();
    assert!(text.contains("VAE Decoder: TAESD"), "{text}");
}
