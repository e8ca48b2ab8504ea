//! History view benchmark: a temporary history of 10,000 entries (each a real PNG, hard links
//! to one small picture so the disk stays small), opened in the real window code under
//! egui_kittest, and timed:
//!
//! * the queries the history thread runs for a new search (count + first page) and for a
//!   page while scrolling, with an empty search and with a query;
//! * one frame of the history view (layout of the visible rows and their AccessKit tree, no
//!   GPU), at the top, while scrolling through the middle, and with a search — and the same
//!   with a history of 100 entries, to show the cost does not grow with the history.
//!
//! `cargo bench --bench history_grid` (release) or, in a debug build,
//! `cargo test --bench history_grid -- --bench`. Without `--bench` (as under
//! `cargo test --all-targets`) it is a quick smoke run with 1,000 entries.

use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use jiff::{SignedDuration, Timestamp};
use lantern::gui::history_state::PAGE_SIZE;
use lantern::gui::{AppOptions, LanternApp};
use lantern::history::{History, NewEntry, Query};
use lantern::output::{RgbImage, save_png};
use lantern::recipe::Recipe;

const SUBJECTS: [&str; 8] = [
    "a lighthouse on a cliff",
    "a red fox in the snow",
    "an old sailor",
    "a castle on a hill",
    "一只红色的狐狸",
    "城市夜景",
    "a bowl of ramen",
    "a koi pond",
];
const STYLES: [&str; 5] = ["oil painting", "watercolour", "35mm photo", "concept art", "ukiyo-e"];

/// Fills `data` with `rows` entries, one PNG each (hard links to one file).
fn fill(data: &Path, rows: usize) {
    let outputs = data.join("outputs");
    let img = RgbImage::from_raw(96, 96, (0..96 * 96 * 3).map(|v| (v * 13 % 251) as u8).collect()).unwrap();
    let source = data.join("source.png");
    save_png(data, &img, &Recipe::default(), Some(&source)).unwrap();
    std::fs::create_dir_all(&outputs).unwrap();
    let mut history = History::open(&data.join("history.sqlite3")).unwrap();
    let base = Timestamp::now() - SignedDuration::from_hours(24 * 60);
    let entries: Vec<NewEntry> = (0..rows)
        .map(|i| {
            let path = outputs.join(format!("{i:06}.png"));
            std::fs::hard_link(&source, &path)
                .or_else(|_| std::fs::copy(&source, &path).map(|_| ()))
                .unwrap();
            let params = Recipe {
                prompt: format!("{}, {}, detailed #{i}", SUBJECTS[i % 8], STYLES[(i / 8) % 5]),
                seed: i as u64,
                model: ["sd15", "sdxl"][i % 2].into(),
                ..Default::default()
            };
            NewEntry {
                created_at: base + SignedDuration::from_secs(i as i64 * 60),
                ..NewEntry::new(params, path)
            }
        })
        .collect();
    for chunk in entries.chunks(1000) {
        history.insert_many(chunk).unwrap();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p95(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 95 / 100).min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let _ = f();
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn query_latency(data: &Path, rows: usize) {
    let history = History::open(&data.join("history.sqlite3")).unwrap();
    for (label, search) in [
        ("no search", None),
        ("search 'lighthouse'", Some("lighthouse")),
        ("search '狐狸' (LIKE)", Some("狐狸")),
        ("search '红色的狐狸' (trigram)", Some("红色的狐狸")),
        ("search 'zebra' (no match)", Some("zebra")),
    ] {
        let q = Query {
            search: search.map(str::to_string),
            ..Query::all()
        };
        let page = |offset: usize| Query {
            offset: offset as u64,
            limit: Some(PAGE_SIZE as u64),
            ..q.clone()
        };
        let reset = time(15, || (history.count(&q).unwrap(), history.list(&page(0)).unwrap()));
        let n = history.count(&q).unwrap();
        let middle = (n as usize / 2 / PAGE_SIZE) * PAGE_SIZE;
        let mid = time(15, || history.list(&page(middle)).unwrap());
        println!(
            "{:<58} {:>12}",
            format!("query {label}: count + first page ({n} of {rows})"),
            ms(reset)
        );
        println!("{:<58} {:>12}", "  one page in the middle", ms(mid));
    }
}

/// The window opened on the History view (as a user who left it there would find it).
fn harness(data: &Path) -> Harness<'static, LanternApp> {
    std::fs::write(data.join("settings.json"), r#"{"show_history": true}"#).unwrap();
    let data_dir = data.to_path_buf();
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .allow_missing_glyphs()
        .build_eframe(move |cc| LanternApp::new(&cc.egui_ctx, AppOptions { model: None, data_dir }))
}

fn settle(h: &mut Harness<'_, LanternApp>, what: &str, cond: impl Fn(&LanternApp) -> bool) {
    let start = Instant::now();
    while !cond(h.state()) {
        assert!(start.elapsed() < Duration::from_secs(300), "timed out: {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn loaded(a: &LanternApp) -> bool {
    let v = &a.state.history;
    v.requested_generation == v.generation
        && v.total.is_some()
        && v.requested.as_ref() == Some(&v.filters)
        && v.visible_pages.iter().all(|p| v.pages.contains_key(p))
        && v.thumbs.wanted.is_empty()
}

fn frames(
    h: &mut Harness<'_, LanternApp>,
    n: usize,
    mut before: impl FnMut(&mut Harness<'_, LanternApp>),
) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            before(h);
            let t = Instant::now();
            h.step();
            t.elapsed()
        })
        .collect()
}

fn frame_times(data: &Path, rows: usize) {
    let mut h = harness(data);
    settle(&mut h, "first results and thumbnails", loaded);
    let top = frames(&mut h, 60, |_| {});
    let cells = h.state().state.history.thumbs.visible.len();
    let shapes = h.output().shapes.len();
    println!(
        "{:<58} {:>12}",
        format!("frame, top ({rows} entries; {cells} cells, {shapes} shapes): median"),
        ms(median(top.clone()))
    );
    println!("{:<58} {:>12}", "  p95", ms(p95(top)));
    let tessellate = time(30, || {
        let out = h.output();
        h.ctx.tessellate(out.shapes.clone(), out.pixels_per_point)
    });
    println!(
        "{:<58} {:>12}",
        "  + tessellating that frame (not done by the harness)",
        ms(tessellate)
    );

    // Scrolling: a wheel notch per frame through the middle of the history, pages and
    // thumbnails arriving as they come (the frame never waits for them).
    let centre = egui::pos2(600.0, 500.0);
    h.hover_at(centre);
    let scroll = frames(&mut h, 120, |h| {
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, -400.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        });
    });
    println!(
        "{:<58} {:>12}",
        "frame while scrolling 400 pt per frame: median",
        ms(median(scroll.clone()))
    );
    println!("{:<58} {:>12}", "  p95", ms(p95(scroll.clone())));
    println!("{:<58} {:>12}", "  max", ms(*scroll.iter().max().unwrap()));
    let v = &h.state().state.history;
    println!(
        "{:<58} {:>12}",
        "  pages in memory / textures after scrolling",
        format!("{} / {}", v.pages.len(), v.thumbs.texture_count())
    );

    h.state_mut().state.history.filters.search = "lighthouse".into();
    h.state_mut().state.history.search_edited = None;
    settle(&mut h, "search results", loaded);
    let searched = frames(&mut h, 60, |_| {});
    println!(
        "{:<58} {:>12}",
        format!(
            "frame with search 'lighthouse' ({} matches): median",
            h.state().state.history.total.unwrap_or(0)
        ),
        ms(median(searched))
    );
    let t = Instant::now();
    h.state_mut().state.history.filters.search = "红色的狐狸".into();
    h.state_mut().state.history.search_edited = None;
    settle(&mut h, "search results", loaded);
    println!(
        "{:<58} {:>12}",
        "new search to grid shown, incl. thumbnails (frames stepped)",
        ms(t.elapsed())
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rows = if full { 10_000 } else { 1_000 };
    println!(
        "history grid benchmark: {rows} entries ({})",
        if full {
            "full"
        } else {
            "smoke run; pass --bench for 10,000"
        }
    );
    let big = tempfile::tempdir().unwrap();
    let t = Instant::now();
    fill(big.path(), rows);
    println!(
        "{:<58} {:>12}",
        "fill (PNGs as hard links, history rows)",
        ms(t.elapsed())
    );
    query_latency(big.path(), rows);
    frame_times(big.path(), rows);
    let small = tempfile::tempdir().unwrap();
    fill(small.path(), 100);
    frame_times(small.path(), 100);
}
