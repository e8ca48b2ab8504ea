//! History benchmark: fills a temporary history with 10,000 entries and reports insert
//! throughput, search latency (English, Chinese, short words, no match), the latency of one
//! grid page at the start, middle and end, opening (with its integrity check), importing
//! PNGs and making a thumbnail.
//!
//! `cargo bench --bench history` (release), or in a debug build:
//! `cargo test --bench history -- --bench`. Without `--bench` (as under
//! `cargo test --all-targets`) it is a quick smoke run with 1,000 entries.

use std::path::Path;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use lantern::history::{History, NewEntry, Query, thumbnail_in};
use lantern::output::{RgbImage, save_png};
use lantern::recipe::Recipe;
use lantern::schedulers::SamplerKind;

/// Entries per grid page: what a 1080p window shows with 160-pixel thumbnails, plus a row.
const PAGE: u64 = 60;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const SUBJECTS: [&str; 12] = [
    "a lighthouse",
    "a red fox",
    "an old sailor",
    "a castle on a hill",
    "a cyberpunk street",
    "a bowl of ramen",
    "a mountain lake",
    "a portrait of a knight",
    "a steam locomotive",
    "a field of sunflowers",
    "a snowy village",
    "a koi pond",
];
const STYLES: [&str; 10] = [
    "oil painting",
    "watercolour",
    "35mm photo",
    "studio lighting",
    "concept art",
    "ukiyo-e",
    "isometric",
    "(masterpiece:1.2)",
    "<lora:add_detail:0.8>",
    "golden hour",
];
const CHINESE: [&str; 8] = [
    "一只红色的狐狸",
    "雪地里的小屋",
    "城市夜景",
    "水墨山水画",
    "古老的灯塔",
    "樱花树下",
    "赛博朋克街道",
    "一碗拉面",
];
const NEGATIVES: [&str; 5] = [
    "blurry, lowres",
    "bad anatomy, extra fingers",
    "模糊，低质量",
    "",
    "watermark, text",
];

fn make_params(rng: &mut Rng, i: u64) -> Recipe {
    let prompt = if rng.next() % 10 < 3 {
        format!("{}，{}", rng.pick(&CHINESE), rng.pick(&STYLES))
    } else {
        format!(
            "{}, {}, {}, highly detailed",
            rng.pick(&SUBJECTS),
            rng.pick(&STYLES),
            rng.pick(&STYLES)
        )
    };
    Recipe {
        prompt,
        negative_prompt: rng.pick(&NEGATIVES).to_string(),
        steps: 20 + (rng.next() % 30) as u32,
        sampler: SamplerKind::ALL[(rng.next() % 10) as usize],
        guidance: 7.0,
        seed: rng.next() >> 32,
        width: 512,
        height: 512,
        model: ["sd15", "sdxl", "sd21"][(i % 3) as usize].to_string(),
        model_hash: Some("6ce0161689".into()),
        ..Default::default()
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let _ = f(); // warm the page cache and statement cache
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

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rows: u64 = if full { 10_000 } else { 1_000 };
    let tmp = tempfile::tempdir().expect("temp dir");
    let db = tmp.path().join("history.sqlite3");
    let mut history = History::open(&db).expect("open");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let base = Timestamp::from_second(1_780_000_000).unwrap();
    let entry = |rng: &mut Rng, i: u64| NewEntry {
        created_at: base + SignedDuration::from_secs(i as i64 * 30),
        duration_ms: Some(4000),
        ..NewEntry::new(make_params(rng, i), format!("/bench/outputs/{i:06}.png"))
    };

    println!(
        "history benchmark: {rows} entries ({})",
        if full {
            "full"
        } else {
            "smoke run; pass --bench for 10,000"
        }
    );
    println!("{:<52} {:>14}", "measure", "result");

    // Bulk inserts (imports, rebuilds): 500 rows per transaction.
    let t = Instant::now();
    let mut i = 0;
    while i < rows - 200 {
        let batch: Vec<NewEntry> = (i..(i + 500).min(rows - 200)).map(|k| entry(&mut rng, k)).collect();
        i += batch.len() as u64;
        history.insert_many(&batch).expect("insert_many");
    }
    let bulk = t.elapsed();
    println!(
        "{:<52} {:>10.0} /s",
        format!("insert, 500 per transaction ({} rows)", rows - 200),
        (rows - 200) as f64 / bulk.as_secs_f64()
    );

    // One commit per image, as `lantern generate` records (synchronous=FULL: an fsync each).
    let t = Instant::now();
    for k in rows - 200..rows {
        history.insert(&entry(&mut rng, k)).expect("insert");
    }
    let single = t.elapsed();
    println!(
        "{:<52} {:>10.0} /s",
        "insert, one commit each (200 rows)",
        200.0 / single.as_secs_f64()
    );
    println!("{:<52} {:>14}", "  = per recorded image", ms(single / 200));

    drop(history);
    let t = Instant::now();
    let history = History::open(&db).expect("reopen");
    println!("{:<52} {:>14}", "open (WAL, quick_check, migrations)", ms(t.elapsed()));
    let count = history.count(&Query::all()).unwrap();
    assert_eq!(count, rows);

    for (label, text) in [
        ("search English word 'lighthouse'", "lighthouse"),
        ("search English two words 'fox painting'", "fox painting"),
        ("search English rare 'ramen ukiyo-e'", "ramen ukiyo-e"),
        ("search Chinese 5 chars '红色的狐狸' (trigram)", "红色的狐狸"),
        ("search Chinese 2 chars '灯塔' (LIKE fallback)", "灯塔"),
        ("search 1 char 'x' (LIKE fallback)", "x"),
        ("search no match 'zebra crossing'", "zebra crossing"),
        ("search no match Chinese '长颈鹿'", "长颈鹿"),
    ] {
        let q = Query {
            search: Some(text.into()),
            limit: Some(PAGE),
            ..Query::default()
        };
        let mut n = 0;
        let page = time(15, || {
            let found = history.list(&q).unwrap();
            n = found.len();
            found
        });
        let total = history.count(&q).unwrap();
        let counted = time(15, || history.count(&q).unwrap());
        println!("{:<52} {:>14}", format!("{label}: page of {n}"), ms(page));
        println!("{:<52} {:>14}", format!("  count ({total} matches)"), ms(counted));
    }

    for (label, offset) in [("first", 0), ("middle", rows / 2), ("last", rows - PAGE)] {
        let q = Query {
            offset,
            limit: Some(PAGE),
            ..Query::default()
        };
        let d = time(15, || history.list(&q).unwrap());
        println!(
            "{:<52} {:>14}",
            format!("grid page of {PAGE}, {label} (offset {offset})"),
            ms(d)
        );
    }
    let q = Query {
        model: Some("sdxl".into()),
        favourites_only: false,
        offset: rows / 4,
        limit: Some(PAGE),
        ..Query::default()
    };
    println!(
        "{:<52} {:>14}",
        "grid page filtered by model, offset n/4",
        ms(time(15, || history.list(&q).unwrap()))
    );
    println!(
        "{:<52} {:>14}",
        "count all",
        ms(time(15, || history.count(&Query::all()).unwrap()))
    );
    let t = Instant::now();
    history.check_integrity().unwrap();
    println!("{:<52} {:>14}", "full integrity_check", ms(t.elapsed()));
    drop(history);

    // Importing real PNGs (what a rebuild after damage costs per image).
    let pics = tmp.path().join("pngs");
    let img = RgbImage::from_raw(128, 128, (0..128 * 128 * 3).map(|v| (v * 7 % 251) as u8).collect()).unwrap();
    let n_png = if full { 300 } else { 50 };
    for k in 0..n_png {
        save_png(&pics, &img, &make_params(&mut rng, k), None).unwrap();
    }
    let mut fresh = History::open(&tmp.path().join("import.sqlite3")).unwrap();
    let t = Instant::now();
    let report = fresh.import_dir(&pics).unwrap();
    let took = t.elapsed();
    println!(
        "{:<52} {:>10.0} /s",
        format!("import 128x128 PNGs ({} added)", report.added),
        report.added as f64 / took.as_secs_f64()
    );

    thumbnail_bench(tmp.path());
}

fn thumbnail_bench(dir: &Path) {
    let data = (0..512 * 512 * 3).map(|v| ((v * 31) % 256) as u8).collect();
    let img = RgbImage::from_raw(512, 512, data).unwrap();
    let png = save_png(dir, &img, &Recipe::default(), Some(&dir.join("thumb-src.png"))).unwrap();
    let cache = dir.join("thumbs");
    let t = Instant::now();
    thumbnail_in(&cache, &png, 256).unwrap();
    println!("{:<52} {:>14}", "thumbnail 512x512 -> 256, first time", ms(t.elapsed()));
    let d = time(15, || thumbnail_in(&cache, &png, 256).unwrap());
    println!("{:<52} {:>14}", "thumbnail, cached", ms(d));
}
