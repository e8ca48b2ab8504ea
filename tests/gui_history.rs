//! The history view, driven through the real window code with egui_kittest: a temporary data
//! folder with real PNGs and a real SQLite history, clicks and typing through AccessKit, and
//! frames stepped while the background threads (queries, thumbnails, decoding) finish.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::gui::{DroppedPath, wait_for, window};
use egui::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{By, NodeT, Queryable};
use jiff::{SignedDuration, Timestamp};
use lantern::gui::LanternApp;
use lantern::gui::history_state::DetailImage;
use lantern::history::{History, NewEntry, Query};
use lantern::output::{RgbImage, save_png};
use lantern::recipe::Recipe;
use lantern::schedulers::SamplerKind;

const FOX: &str = "a red fox in the snow, oil painting";
const FOX_CN: &str = "一只红色的狐狸，水墨画";
const LIGHTHOUSE: &str = "a lighthouse at dusk";
const CITY_CN: &str = "城市夜景，赛博朋克";
const KOI: &str = "a koi pond seen from above";

struct Spec {
    prompt: &'static str,
    seed: u64,
    favourite: bool,
}

/// Oldest first; the grid shows them newest first.
const SPECS: [Spec; 5] = [
    Spec {
        prompt: KOI,
        seed: 5,
        favourite: false,
    },
    Spec {
        prompt: CITY_CN,
        seed: 4,
        favourite: false,
    },
    Spec {
        prompt: LIGHTHOUSE,
        seed: 3,
        favourite: true,
    },
    Spec {
        prompt: FOX_CN,
        seed: 2,
        favourite: false,
    },
    Spec {
        prompt: FOX,
        seed: 1,
        favourite: false,
    },
];

fn params(prompt: &str, seed: u64) -> Recipe {
    Recipe {
        prompt: prompt.into(),
        negative_prompt: "blurry, lowres".into(),
        steps: 2,
        sampler: SamplerKind::EulerA,
        guidance: 6.5,
        seed,
        width: 64,
        height: 64,
        model: "sd1-tiny".into(),
        ..Default::default()
    }
}

fn picture(seed: u64) -> RgbImage {
    let data = (0..64 * 64 * 3)
        .map(|i| ((i as u64 * 7 + seed * 40) % 256) as u8)
        .collect();
    RgbImage::from_raw(64, 64, data).unwrap()
}

/// A data folder with the five entries above, their PNGs in `outputs/`. The koi pond's file
/// is deleted afterwards (a missing file). Returns the folder and the PNG paths by prompt.
fn data_folder() -> (tempfile::TempDir, Vec<(&'static str, PathBuf)>) {
    let data = tempfile::tempdir().unwrap();
    let outputs = data.path().join("outputs");
    let history = History::open(&data.path().join("history.sqlite3")).unwrap();
    let base = Timestamp::now() - SignedDuration::from_mins(60);
    let mut paths = Vec::new();
    for (i, spec) in SPECS.iter().enumerate() {
        let p = params(spec.prompt, spec.seed);
        let path = save_png(&outputs, &picture(spec.seed), &p, None).unwrap();
        history
            .insert(&NewEntry {
                created_at: base + SignedDuration::from_mins(i as i64),
                favourite: spec.favourite,
                ..NewEntry::new(p, &path)
            })
            .unwrap();
        paths.push((spec.prompt, path));
    }
    std::fs::remove_file(&paths[0].1).unwrap();
    (data, paths)
}

fn app(data: &Path, model: Option<PathBuf>) -> Harness<'static, LanternApp> {
    window(data)
        .model(model)
        .size(1280.0, 800.0)
        .allow_missing_glyphs()
        // The Create view's parameters panel (not part of this view) has unnamed combo boxes;
        // the history view is checked explicitly by `check_accessibility` below.
        .without_accessibility_check()
        .build()
}

/// Steps until the history view has nothing on its way (query answered, thumbnails and the
/// detail picture in), so the layout a click is aimed at is the one it lands on.
fn settle(h: &mut Harness<'_, LanternApp>) {
    for _ in 0..200 {
        let v = &h.state().state.history;
        let calm = v.requested_generation == v.generation
            && v.requested.as_ref() == Some(&v.filters)
            && v.thumbs.wanted.is_empty()
            && !matches!(v.detail, lantern::gui::history_state::DetailImage::Loading);
        if calm {
            break;
        }
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    h.step();
    h.step();
}

/// Clicks `button` until `done`. kittest clicks at the widget's place in the previous frame;
/// the detail panel reserves the picture's space while it loads, but can still settle for a
/// frame (its scroll area measuring), and a click there lands beside the button. A person would
/// just click again; so does the test, at most five times. It waits a good while before
/// clicking again: a click that did land (a favourite toggled, its reply on the way) must not
/// be undone by a second one.
fn click_until(h: &mut Harness<'_, LanternApp>, button: &str, done: impl Fn(&Harness<'_, LanternApp>) -> bool) {
    for _ in 0..50 {
        if h.query_by_label(button).is_some() {
            break;
        }
        h.step();
    }
    for _ in 0..5 {
        settle(h);
        if done(h) {
            return;
        }
        h.get_by_label(button).click();
        for _ in 0..400 {
            h.step();
            if done(h) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    panic!("clicking {button:?} never had its effect");
}

fn total(app: &LanternApp) -> Option<u64> {
    let h = &app.state.history;
    (h.requested_generation == h.generation && h.requested.as_ref() == Some(&h.filters))
        .then_some(h.total)
        .flatten()
}

/// The labels of the grid cells on screen, in order (each is "prompt · seed N").
fn cells(h: &Harness<'_, LanternApp>) -> Vec<String> {
    h.query_all(By::new().role(Role::Button).label_contains(" · seed "))
        .map(|n| n.accesskit_node().label().unwrap_or_default())
        .collect()
}

fn open_history(h: &mut Harness<'_, LanternApp>, expected: u64) {
    h.get_by_label("History").click();
    wait_for(h, "the first results", |a| total(a) == Some(expected));
    let n = expected as usize;
    wait_for(h, "the cells", |a| a.state.history.entry_at(n - 1).is_some());
    h.check_accessibility();
}

fn search(h: &mut Harness<'_, LanternApp>, text: &str) {
    h.state_mut().state.history.filters.search.clear();
    h.step();
    let field = h.get_by_label("Search");
    field.focus();
    h.step();
    h.get_by_label("Search").type_text(text);
    h.step();
}

#[test]
fn grid_shows_every_entry_newest_first_with_thumbnails() {
    let (data, paths) = data_folder();
    let mut h = app(data.path(), None);
    open_history(&mut h, 5);
    assert!(h.state().state.settings.show_history);
    let labels = cells(&h);
    assert_eq!(labels.len(), 5, "{labels:?}");
    assert!(labels[0].starts_with(FOX), "{labels:?}");
    assert!(labels[4].starts_with(KOI), "{labels:?}");
    h.get_by_label("5 matches");

    // Thumbnails are made on disk and uploaded; the missing file gets a placeholder instead.
    wait_for(&mut h, "thumbnails", |a| {
        let t = &a.state.history.thumbs;
        t.texture_count() == 4
    });
    let koi_id = h.state().state.history.entry_at(4).unwrap().id;
    assert!(h.state().state.history.thumbs.is_failed(koi_id));
    let cached = std::fs::read_dir(data.path().join("thumbnails")).unwrap().count();
    assert_eq!(cached, 4);
    assert!(!paths[0].1.exists());

    // The choice of view is remembered.
    let settings = std::fs::read_to_string(data.path().join("settings.json")).unwrap();
    assert!(settings.contains("\"show_history\": true"), "{settings}");
}

#[test]
fn search_narrows_the_grid_in_english_and_chinese() {
    let (data, _) = data_folder();
    let mut h = app(data.path(), None);
    open_history(&mut h, 5);

    search(&mut h, "fox");
    // Debounced: one frame after typing, the old results are still shown.
    assert_eq!(h.state().state.history.total, Some(5));
    wait_for(&mut h, "the English search", |a| total(a) == Some(1));
    let labels = cells(&h);
    assert_eq!(labels.len(), 1, "{labels:?}");
    assert!(labels[0].starts_with(FOX));

    search(&mut h, "狐狸");
    wait_for(&mut h, "the two-character Chinese search", |a| total(a) == Some(1));
    assert!(cells(&h)[0].starts_with(FOX_CN), "{:?}", cells(&h));

    search(&mut h, "夜景");
    wait_for(&mut h, "another Chinese search", |a| total(a) == Some(1));
    assert!(cells(&h)[0].starts_with(CITY_CN));

    search(&mut h, "红色的狐狸");
    wait_for(&mut h, "a trigram Chinese search", |a| total(a) == Some(1));
    assert!(cells(&h)[0].starts_with(FOX_CN));

    search(&mut h, "zebra");
    wait_for(&mut h, "a search without matches", |a| total(a) == Some(0));
    assert!(cells(&h).is_empty());
    h.get_by_label("Nothing matches these filters.");
}

#[test]
fn favourites_filter_and_toggle() {
    let (data, _) = data_folder();
    let mut h = app(data.path(), None);
    open_history(&mut h, 5);
    h.get_by_label("Favourites only").click();
    wait_for(&mut h, "the favourites filter", |a| total(a) == Some(1));
    let labels = cells(&h);
    assert_eq!(labels.len(), 1);
    assert!(labels[0].starts_with(LIGHTHOUSE));

    // Mark the fox as a favourite from its detail panel: it joins the filtered grid.
    h.get_by_label("Favourites only").click();
    wait_for(&mut h, "all entries again", |a| total(a) == Some(5));
    settle(&mut h);
    let fox = cells(&h).into_iter().find(|l| l.starts_with(FOX)).unwrap();
    // The grid is refilling after the filter change: make sure the fox is the one opened.
    click_until(&mut h, &fox, |h| {
        h.state()
            .state
            .history
            .selected
            .as_ref()
            .is_some_and(|e| e.params.prompt == FOX)
    });
    click_until(&mut h, "Favourite", |h| {
        h.state().state.history.selected.as_ref().is_some_and(|e| e.favourite)
    });
    // The flag is written by the history thread: it reaches the database shortly after.
    let db = History::open(&data.path().join("history.sqlite3")).unwrap();
    let favourites = || {
        db.list(&Query {
            favourites_only: true,
            ..Query::all()
        })
        .unwrap()
        .len()
    };
    for _ in 0..400 {
        if favourites() == 2 {
            break;
        }
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(favourites(), 2);
    settle(&mut h);
    h.get_by_label("Favourites only").click();
    wait_for(&mut h, "two favourites", |a| total(a) == Some(2));
}

#[test]
fn use_these_settings_restores_every_parameter() {
    let (data, _) = data_folder();
    let mut h = app(data.path(), None);
    {
        let p = &mut h.state_mut().state.settings.params;
        p.prompt = "something else".into();
        p.steps = 50;
        p.batch_size = 4;
        p.sampler = SamplerKind::Ddim;
    }
    open_history(&mut h, 5);
    let fox = cells(&h).into_iter().find(|l| l.starts_with(FOX)).unwrap();
    h.get_by_label(&fox).click();
    wait_for(&mut h, "the full image", |a| {
        matches!(a.state.history.detail, DetailImage::Ready(_))
    });
    h.get_by_label("Use these settings").click();
    h.step();
    let app = h.state();
    let p = &app.state.settings.params;
    assert_eq!(p.prompt, FOX);
    assert_eq!(p.negative_prompt, "blurry, lowres");
    assert_eq!(p.seed, 1);
    assert!(app.state.settings.seed_locked, "the seed must be kept, not redrawn");
    assert_eq!(p.steps, 2);
    assert_eq!((p.width, p.height), (64, 64));
    assert_eq!(p.sampler, SamplerKind::EulerA);
    assert_eq!(p.guidance, 6.5);
    assert_eq!(p.batch_size, 1);
    assert!(!app.state.settings.show_history, "back to Create to generate");
    // No model folder called sd1-tiny is known here: the user is told which model it was.
    let status = app.state.status.as_ref().unwrap().text.clone();
    assert!(status.contains("“sd1-tiny”"), "{status}");
}

#[test]
fn use_these_settings_chooses_a_known_model_folder_by_name() {
    let (data, _) = data_folder();
    let folder = data.path().join("models").join("sd1-tiny");
    std::fs::create_dir_all(&folder).unwrap();
    let settings = format!(
        "{{\"user_models\": [{}], \"show_history\": true}}",
        serde_json::to_string(&folder).unwrap()
    );
    std::fs::write(data.path().join("settings.json"), settings).unwrap();
    let mut h = app(data.path(), None);
    // Opened on History, as the settings say.
    wait_for(&mut h, "the results", |a| total(a) == Some(5));
    wait_for(&mut h, "the cells", |a| a.state.history.entry_at(4).is_some());
    h.get_by_label(&cells(&h)[0]).click();
    wait_for(&mut h, "the detail panel", |a| a.state.history.selected.is_some());
    h.get_by_label("Use these settings").click();
    h.step();
    let chosen = h.state().state.settings.model.clone().unwrap();
    assert_eq!(chosen, std::fs::canonicalize(&folder).unwrap());
}

#[test]
fn delete_with_the_file_box_removes_entry_and_file() {
    let (data, paths) = data_folder();
    let lighthouse_png = paths.iter().find(|(p, _)| *p == LIGHTHOUSE).unwrap().1.clone();
    let fox_png = paths.iter().find(|(p, _)| *p == FOX).unwrap().1.clone();
    let mut h = app(data.path(), None);
    open_history(&mut h, 5);

    // Without the box: the entry goes, the file stays.
    let fox = cells(&h).into_iter().find(|l| l.starts_with(FOX)).unwrap();
    h.get_by_label(&fox).click();
    wait_for(&mut h, "the detail panel", |a| a.state.history.selected.is_some());
    click_until(&mut h, "Delete…", |h| h.query_by_label("Delete entry").is_some());
    h.get_by_label("Delete entry").click();
    wait_for(&mut h, "four entries", |a| total(a) == Some(4));
    assert!(fox_png.exists());

    // With the box: both go.
    let lighthouse = cells(&h).into_iter().find(|l| l.starts_with(LIGHTHOUSE)).unwrap();
    h.get_by_label(&lighthouse).click();
    wait_for(&mut h, "the detail panel", |a| {
        a.state
            .history
            .selected
            .as_ref()
            .is_some_and(|e| e.params.prompt == LIGHTHOUSE)
    });
    click_until(&mut h, "Delete…", |h| {
        h.query_by_label("Also delete the file").is_some()
    });
    h.get_by_label("Also delete the file").click();
    h.step();
    h.get_by_label("Delete entry and file").click();
    wait_for(&mut h, "three entries", |a| total(a) == Some(3));
    assert!(!lighthouse_png.exists(), "the file must be deleted");
    assert!(cells(&h).iter().all(|l| !l.starts_with(LIGHTHOUSE)));
    assert!(h.state().state.history.selected.is_none());
    let db = History::open(&data.path().join("history.sqlite3")).unwrap();
    assert_eq!(db.count(&Query::all()).unwrap(), 3);
}

#[test]
fn a_missing_file_shows_a_placeholder() {
    let (data, _) = data_folder();
    let mut h = app(data.path(), None);
    open_history(&mut h, 5);
    let koi = cells(&h).into_iter().find(|l| l.starts_with(KOI)).unwrap();
    h.get_by_label(&koi).click();
    wait_for(&mut h, "the decode attempt", |a| {
        matches!(a.state.history.detail, DetailImage::Unavailable(_))
    });
    h.get_by_label("The image file is not available");
    // Its settings still work.
    h.get_by_label("Use these settings").click();
    h.step();
    assert_eq!(h.state().state.settings.params.prompt, KOI);
}

fn drop_file(h: &mut Harness<'_, LanternApp>, path: &Path) {
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(path.to_path_buf())));
    h.step();
}

#[test]
fn dropping_an_a1111_png_restores_its_settings() {
    let data = tempfile::tempdir().unwrap();
    let mut h = app(data.path(), None);
    h.step();
    let a1111 = "a watercolour lighthouse,\nseagulls overhead\n\
                 Negative prompt: blurry, lowres\n\
                 Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 987654321, Size: 512x768, \
                 Model hash: abcdef1234, Model: v1-5-pruned-emaonly, Version: v1.6.0";
    let png = lantern::output::png::encode_png(&picture(1), Some(a1111)).unwrap();
    let path = data.path().join("from-a1111.png");
    std::fs::write(&path, png).unwrap();
    drop_file(&mut h, &path);
    wait_for(&mut h, "the dropped file", |a| {
        a.state.settings.params.seed == 987654321
    });
    let app = h.state();
    let p = &app.state.settings.params;
    assert_eq!(p.prompt, "a watercolour lighthouse,\nseagulls overhead");
    assert_eq!(p.negative_prompt, "blurry, lowres");
    assert_eq!(p.steps, 28);
    assert_eq!(p.sampler, SamplerKind::DpmPp2mKarras);
    assert_eq!(p.guidance, 6.5);
    assert_eq!((p.width, p.height), (512, 768));
    // No `RNG` field: A1111's GPU generator, which `gpu` reproduces.
    assert_eq!(p.rng, lantern::recipe::NoiseKind::Gpu);
    assert!(app.state.settings.seed_locked);
    let status = app.state.status.as_ref().unwrap().text.clone();
    assert!(status.contains("from-a1111.png"), "{status}");
    assert!(status.contains("v1-5-pruned-emaonly"), "{status}");

    // A picture without settings becomes the start picture; a file that is no picture gets a
    // plain message; neither changes the settings.
    let bare = data.path().join("photo.png");
    std::fs::write(&bare, lantern::output::png::encode_png(&picture(2), None).unwrap()).unwrap();
    drop_file(&mut h, &bare);
    wait_for(&mut h, "the start picture", |a| a.state.start.picture.is_some());
    let status = h.state().state.status.as_ref().unwrap().text.clone();
    assert!(status.contains("Starting from photo.png"), "{status}");
    assert!(h.state().state.settings.params.init_image.is_some());
    let text = data.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    drop_file(&mut h, &text);
    wait_for(&mut h, "the message", |a| {
        a.state.status.as_ref().is_some_and(|s| s.text.contains("notes.txt"))
    });
    let status = h.state().state.status.as_ref().unwrap().text.clone();
    assert!(
        status.contains("Could not use the picture: notes.txt: not a picture"),
        "{status}"
    );
    assert_eq!(h.state().state.settings.params.seed, 987654321);
}

#[test]
fn a_rebuilt_history_is_told_in_the_status_line() {
    let data = tempfile::tempdir().unwrap();
    let outputs = data.path().join("outputs");
    for seed in 1..=3 {
        save_png(&outputs, &picture(seed), &params(FOX, seed), None).unwrap();
    }
    std::fs::write(
        data.path().join("history.sqlite3"),
        b"this is not a database at all, not even close",
    )
    .unwrap();
    let mut h = app(data.path(), None);
    wait_for(&mut h, "the recovery notice", |a| {
        a.state.status.as_ref().is_some_and(|s| s.text.contains("rebuilt"))
    });
    let status = h.state().state.status.as_ref().unwrap().text.clone();
    assert!(
        status.contains("damaged") && status.contains("rebuilt 3 entries"),
        "{status}"
    );
    open_history(&mut h, 3);
}

#[test]
fn rerun_restores_and_queues_a_generation() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sd1-tiny");
    let (data, _) = data_folder();
    let mut h = app(data.path(), Some(fixture.clone()));
    open_history(&mut h, 5);
    let fox = cells(&h).into_iter().find(|l| l.starts_with(FOX)).unwrap();
    h.get_by_label(&fox).click();
    wait_for(&mut h, "the detail panel", |a| a.state.history.selected.is_some());
    click_until(&mut h, "Re-run", |h| {
        let s = &h.state().state;
        s.running.is_some() || !s.queue.is_empty() || !s.images.is_empty()
    });
    let app = h.state();
    let job = app.state.running.as_ref().map(|r| r.label.clone());
    let job = job.or_else(|| app.state.queue.front().map(|j| j.label.clone()));
    match job {
        Some(label) => assert_eq!(label, format!("{FOX} · 64×64 · 2 steps")),
        // The fixture's job (64×64, 2 steps) can finish within the frame's second pass: then
        // the picture it made must be the entry's recipe.
        None => {
            let made = app
                .state
                .images
                .last()
                .map(|i| &i.params)
                .expect("a queued, running or finished job");
            assert_eq!(
                (made.prompt.as_str(), made.width, made.height, made.steps, made.seed),
                (FOX, 64, 64, 2, 1)
            );
        }
    }
    let p = &app.state.settings.params;
    assert_eq!((p.seed, app.state.settings.seed_locked, p.batch_size), (1, true, 1));
    // The entry's model (sd1-tiny) is the chosen one: it is kept, and the view stays.
    assert_eq!(app.state.settings.model, Some(std::fs::canonicalize(&fixture).unwrap()));
    assert!(app.state.settings.show_history);
}

/// The whole loop: Re-run generates with the fixture model, the worker records the image, and
/// it appears at the top of the grid. Needs a working sampler, which this branch's base does
/// not have yet (`schedulers::build` is a placeholder until the schedulers branch is merged).
#[test]
fn rerun_generates_again_and_the_new_image_appears_at_the_top() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sd1-tiny");
    let (data, _) = data_folder();
    let mut h = app(data.path(), Some(fixture));
    open_history(&mut h, 5);
    let fox = cells(&h).into_iter().find(|l| l.starts_with(FOX)).unwrap();
    h.get_by_label(&fox).click();
    wait_for(&mut h, "the detail panel", |a| a.state.history.selected.is_some());
    click_until(&mut h, "Re-run", |h| {
        let s = &h.state().state;
        s.running.is_some() || !s.queue.is_empty() || !s.images.is_empty()
    });
    wait_for(&mut h, "the generation", |a| a.is_idle() && total(a) == Some(6));
    wait_for(&mut h, "the new cell", |a| a.state.history.entry_at(0).is_some());
    let newest = h.state().state.history.entry_at(0).unwrap().clone();
    assert_eq!(newest.params.prompt, FOX);
    assert_eq!(newest.params.seed, 1, "the same seed");
    assert_eq!(newest.params.steps, 2);
    assert_eq!(newest.params.model, "sd1-tiny");
    assert!(newest.image_path.exists());
    assert!(cells(&h)[0].starts_with(FOX));
}

/// A dropped picture finds its model by `Model hash` first (names differ between setups),
/// then by name; a model that is nowhere is named in the status line and nothing switches.
#[test]
fn a_dropped_picture_switches_to_the_model_its_hash_names() {
    let data = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let sd1 = std::fs::canonicalize(fixtures.join("sd1-tiny")).unwrap();
    let sd2 = std::fs::canonicalize(fixtures.join("sd2-tiny")).unwrap();
    let settings = serde_json::json!({ "user_models": [sd1, sd2] });
    std::fs::write(data.path().join("settings.json"), settings.to_string()).unwrap();
    let mut h = app(data.path(), Some(sd1.clone()));
    wait_for(&mut h, "the model and the hashes", |a| {
        a.is_idle() && a.state.models.hashes.contains_key(&sd2)
    });
    let hash_of = |h: &Harness<'_, LanternApp>, p: &PathBuf| h.state().state.models.hashes[p].clone();
    let (sd1_hash, sd2_hash) = (hash_of(&h, &sd1), hash_of(&h, &sd2));
    assert_ne!(sd1_hash, sd2_hash);
    // The scan's hash is the one a loaded model writes into its pictures.
    let loaded = match &h.state().state.model {
        lantern::gui::state::ModelStatus::Ready(info) => info.hash.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(loaded, sd1_hash);
    assert_eq!(
        lantern::model::known_model_hash(&sd2, candle_core::DType::F32),
        Some(sd2_hash.clone())
    );

    let mut n = 0;
    let mut drop_picture = |h: &mut Harness<'_, LanternApp>, model: &str, hash: &str| {
        n += 1;
        let text = format!(
            "a fox\nSteps: 4, Sampler: Euler, CFG scale: 7, Seed: {n}, Size: 64x64, \
             Model hash: {hash}, Model: {model}"
        );
        let path = data.path().join(format!("picture-{n}.png"));
        let png = lantern::output::png::encode_png(&picture(n), Some(&text)).unwrap();
        std::fs::write(&path, png).unwrap();
        drop_file(h, &path);
        let seed = n;
        wait_for(h, "the dropped picture", |a| a.state.settings.params.seed == seed);
    };
    let chosen = |h: &Harness<'_, LanternApp>| h.state().state.settings.model.clone();
    let status = |h: &Harness<'_, LanternApp>| h.state().state.status.as_ref().unwrap().text.clone();

    // Another setup's name for sd2's weights: the hash finds it.
    drop_picture(&mut h, "my-renamed-model", &sd2_hash);
    assert_eq!(chosen(&h), Some(sd2.clone()));
    assert!(status(&h).contains("Switched to the model sd2-tiny"), "{}", status(&h));
    wait_for(&mut h, "sd2 loaded", |a| a.is_idle());

    // A name and a hash that disagree: the hash wins.
    drop_picture(&mut h, "sd2-tiny", &sd1_hash.to_uppercase());
    assert_eq!(chosen(&h), Some(sd1.clone()));
    wait_for(&mut h, "sd1 loaded", |a| a.is_idle());

    // The current model's hash: nothing to switch.
    drop_picture(&mut h, "whatever", &sd1_hash);
    assert_eq!(chosen(&h), Some(sd1.clone()));
    assert!(!status(&h).contains("Switched"), "{}", status(&h));

    // Neither hash nor name known: said, and the model stays.
    drop_picture(&mut h, "nowhere-xl", "0123456789");
    assert_eq!(chosen(&h), Some(sd1.clone()));
    assert!(
        status(&h).contains("nowhere-xl") && status(&h).contains("not among your model folders"),
        "{}",
        status(&h)
    );
}
