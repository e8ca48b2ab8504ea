//! The history store against a real SQLite file and real PNG files: search (English,
//! Chinese, short words), filters, paging, migrations from version 1, recovery from damage,
//! a writer killed with SIGKILL, imports, export, thumbnails and the CLI listing.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use lantern::Error;
use lantern::cli::history::{HistoryArgs, HistoryCommand, ImportArgs, ListArgs};
use lantern::history::{History, NewEntry, Query, schema, thumbnail_in};
use lantern::output::png::decode_png_file;
use lantern::output::{RgbImage, save_png};
use lantern::recipe::{NoiseKind, Recipe};
use lantern::schedulers::SamplerKind;

#[path = "support/zlib_bomb.rs"]
mod zlib_bomb;

fn image(salt: u8) -> RgbImage {
    let data = (0..16 * 16 * 3).map(|i| (i as u8).wrapping_mul(31) ^ salt).collect();
    RgbImage::from_raw(16, 16, data).unwrap()
}

fn params(prompt: &str, negative: &str, model: &str, seed: u64) -> Recipe {
    Recipe {
        prompt: prompt.into(),
        negative_prompt: negative.into(),
        steps: 20,
        sampler: SamplerKind::EulerA,
        guidance: 7.0,
        seed,
        width: 16,
        height: 16,
        model: model.into(),
        model_hash: Some("abcd1234".into()),
        ..Default::default()
    }
}

/// Saves real PNGs into `outputs` and records them, `created_at` one minute apart (oldest first).
fn fill(history: &History, outputs: &Path, items: &[Recipe]) -> Vec<i64> {
    let base = Timestamp::from_second(1_790_000_000).unwrap();
    items
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let path = save_png(outputs, &image(i as u8), p, None).unwrap();
            let entry = NewEntry {
                created_at: base + jiff::SignedDuration::from_secs(60 * i as i64),
                duration_ms: Some(1500 + i as u64),
                ..NewEntry::new(p.clone(), path)
            };
            history.insert(&entry).unwrap()
        })
        .collect()
}

fn sample_items() -> Vec<Recipe> {
    vec![
        params("A red fox in the snow", "blurry", "sd15", 1),
        params("一只红色的狐狸在雪地里", "模糊，低质量", "sd15", 2),
        params("portrait of an old sailor", "lowres, bad hands", "sdxl", 3),
        params("城市夜景 neon city at night", "", "sdxl", 4),
        params("watercolour lighthouse, 100% cotton_paper", "", "sd15", 5),
    ]
}

fn prompts(entries: &[lantern::history::Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.params.prompt.as_str()).collect()
}

fn search(h: &History, text: &str) -> Vec<String> {
    let found = h.list(&Query::search(text)).unwrap();
    assert_eq!(
        h.count(&Query::search(text)).unwrap(),
        found.len() as u64,
        "count for {text:?}"
    );
    found.into_iter().map(|e| e.params.prompt).collect()
}

#[test]
fn search_finds_english_and_chinese_substrings_and_short_words() {
    let tmp = tempfile::tempdir().unwrap();
    let h = History::open(&tmp.path().join("history.sqlite3")).unwrap();
    fill(&h, &tmp.path().join("outputs"), &sample_items());

    assert_eq!(search(&h, "fox"), ["A red fox in the snow"]);
    assert_eq!(search(&h, "FOX"), ["A red fox in the snow"], "case-insensitive");
    assert_eq!(search(&h, "ed fo"), ["A red fox in the snow"], "two-letter words");
    assert_eq!(
        search(&h, "sailor old"),
        ["portrait of an old sailor"],
        "words in any order"
    );
    assert_eq!(search(&h, "ailo"), ["portrait of an old sailor"], "inside a word");
    assert_eq!(
        search(&h, "红色的狐狸"),
        ["一只红色的狐狸在雪地里"],
        "Chinese, trigram index"
    );
    assert_eq!(
        search(&h, "狐狸"),
        ["一只红色的狐狸在雪地里"],
        "Chinese, two characters"
    );
    assert_eq!(search(&h, "狐"), ["一只红色的狐狸在雪地里"], "Chinese, one character");
    assert_eq!(search(&h, "夜景"), ["城市夜景 neon city at night"]);
    assert_eq!(
        search(&h, "低质量"),
        ["一只红色的狐狸在雪地里"],
        "negative prompt, Chinese"
    );
    assert_eq!(
        search(&h, "bad hands"),
        ["portrait of an old sailor"],
        "negative prompt"
    );
    assert_eq!(search(&h, "100%"), ["watercolour lighthouse, 100% cotton_paper"]);
    assert_eq!(
        search(&h, "n_p"),
        ["watercolour lighthouse, 100% cotton_paper"],
        "LIKE wildcards escaped"
    );
    assert!(search(&h, "%").is_empty() || search(&h, "%").len() == 1);
    assert!(search(&h, "zebra").is_empty());
    assert!(search(&h, "狼").is_empty());
    // FTS syntax in user input is just text, never an error.
    for odd in [
        "\"",
        "\"fox",
        "fox OR snow",
        "NEAR(a b)",
        "a*",
        "(masterpiece:1.2)",
        "'; DROP TABLE x; --",
    ] {
        h.list(&Query::search(odd)).unwrap();
    }
    assert_eq!(search(&h, "").len(), 5);
    // A pasted wall of words: 1200 short ones (each a LIKE term) and 1200 long ones (FTS
    // terms) used to nest the query past SQLite's depth limit of 1000.
    let many: Vec<String> = (0..1200).map(|i| format!("{}", i % 97)).collect();
    assert!(search(&h, &format!("fox {}", many.join(" "))).is_empty());
    let short = vec!["ed"; 1200].join(" ");
    assert_eq!(search(&h, &format!("{short} fox")), ["A red fox in the snow"]);
    let mut distinct: Vec<String> = (0..1200).map(|i| format!("w{i:x}")).collect();
    distinct.extend((0..1200).map(|i| char::from_u32(0x4e00 + i).unwrap().to_string()));
    assert!(search(&h, &distinct.join(" ")).is_empty());
}

#[test]
fn filters_paging_favourites_and_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = History::open(&tmp.path().join("history.sqlite3")).unwrap();
    let ids = fill(&h, &tmp.path().join("outputs"), &sample_items());

    // Newest first.
    let all = h.list(&Query::all()).unwrap();
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids.iter().rev().copied().collect::<Vec<_>>()
    );

    let by_model = Query {
        model: Some("sdxl".into()),
        ..Query::all()
    };
    assert_eq!(
        prompts(&h.list(&by_model).unwrap()),
        ["城市夜景 neon city at night", "portrait of an old sailor"]
    );
    assert_eq!(
        h.models().unwrap(),
        vec![("sd15".to_string(), 3), ("sdxl".to_string(), 2)]
    );

    let by_seed = Query {
        seed: Some(3),
        ..Query::all()
    };
    assert_eq!(prompts(&h.list(&by_seed).unwrap()), ["portrait of an old sailor"]);

    // Entries are one minute apart from the base time: [base+1min, base+3min) holds #1 and #2.
    let base = Timestamp::from_second(1_790_000_000).unwrap();
    let window = Query {
        since: Some(base + jiff::SignedDuration::from_secs(60)),
        until: Some(base + jiff::SignedDuration::from_secs(180)),
        ..Query::all()
    };
    assert_eq!(
        prompts(&h.list(&window).unwrap()),
        ["portrait of an old sailor", "一只红色的狐狸在雪地里"]
    );

    assert!(h.set_favourite(ids[0], true).unwrap());
    assert!(h.set_favourite(ids[3], true).unwrap());
    assert!(!h.set_favourite(9999, true).unwrap());
    let favs = Query {
        favourites_only: true,
        ..Query::all()
    };
    assert_eq!(h.count(&favs).unwrap(), 2);
    let fav_sd15 = Query {
        favourites_only: true,
        model: Some("sd15".into()),
        ..Query::all()
    };
    assert_eq!(prompts(&h.list(&fav_sd15).unwrap()), ["A red fox in the snow"]);
    let combined = Query {
        search: Some("city".into()),
        favourites_only: true,
        ..Query::all()
    };
    assert_eq!(h.count(&combined).unwrap(), 1);

    // Paging: pages of two, no overlap, no gap.
    let mut paged = Vec::new();
    for page in 0..3 {
        let q = Query {
            offset: page * 2,
            limit: Some(2),
            ..Query::default()
        };
        paged.extend(h.list(&q).unwrap().into_iter().map(|e| e.id));
    }
    assert_eq!(paged, all.iter().map(|e| e.id).collect::<Vec<_>>());

    // get / find_by_path (a relative spelling of the same file finds it too).
    let first = h.get(ids[0]).unwrap().unwrap();
    assert_eq!(first.params, sample_items()[0]);
    assert_eq!(first.duration_ms, Some(1500));
    assert!(first.favourite);
    assert!(first.image_path.is_absolute());
    let found = h.find_by_path(&first.image_path).unwrap().unwrap();
    assert_eq!(found.id, ids[0]);
    let cwd = std::env::current_dir().unwrap();
    if let Ok(rel) = first.image_path.strip_prefix(&cwd) {
        assert_eq!(h.find_by_path(rel).unwrap().unwrap().id, ids[0]);
    }

    // Recording the same path again updates the row in place.
    let mut changed = first.params.clone();
    changed.prompt = "A blue fox".into();
    let again = h.insert(&NewEntry::new(changed, &first.image_path)).unwrap();
    assert_eq!(again, ids[0]);
    assert_eq!(search(&h, "blue fox"), ["A blue fox"]);
    assert!(search(&h, "red fox").is_empty(), "the index follows updates");
    assert!(h.get(ids[0]).unwrap().unwrap().favourite, "favourite kept");

    // Delete the entry only, then entry and file.
    let kept_file = h.delete(ids[1], false).unwrap().unwrap().image_path;
    assert!(kept_file.exists());
    assert!(h.get(ids[1]).unwrap().is_none());
    assert!(search(&h, "狐狸").is_empty(), "the index follows deletes");
    let gone_file = h.delete(ids[2], true).unwrap().unwrap().image_path;
    assert!(!gone_file.exists());
    assert!(h.delete(ids[2], true).unwrap().is_none());
    assert_eq!(h.count(&Query::all()).unwrap(), 3);
    h.check_integrity().unwrap();
}

/// Version 1 exactly as released. Kept here, frozen, so that editing a released migration
/// fails this test instead of silently forking users' databases.
const RELEASED_V1: &str = "
CREATE TABLE generations (
    id              INTEGER PRIMARY KEY,
    created_at      INTEGER NOT NULL,
    prompt          TEXT    NOT NULL,
    negative_prompt TEXT    NOT NULL DEFAULT '',
    model           TEXT    NOT NULL DEFAULT '',
    model_hash      TEXT,
    sampler         TEXT    NOT NULL,
    steps           INTEGER NOT NULL,
    guidance        REAL    NOT NULL,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    seed            INTEGER NOT NULL,
    batch_index     INTEGER NOT NULL DEFAULT 0,
    batch_size      INTEGER NOT NULL DEFAULT 1,
    duration_ms     INTEGER,
    image_path      TEXT    NOT NULL UNIQUE,
    favourite       INTEGER NOT NULL DEFAULT 0,
    extra           TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX generations_by_time  ON generations (created_at DESC, id DESC);
CREATE INDEX generations_by_model ON generations (model, created_at DESC);
CREATE INDEX generations_by_seed  ON generations (seed);
";

#[test]
fn migrates_a_version_1_database() {
    assert_eq!(schema::V1, RELEASED_V1, "a released migration was edited");
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("history.sqlite3");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(RELEASED_V1).unwrap();
        conn.execute_batch("PRAGMA user_version = 1").unwrap();
        let rows = [
            (
                1_700_000_000_000i64,
                "a red fox in the snow",
                "blurry",
                "sd15",
                "euler-a",
                1i64,
                "/old/fox.png",
                1,
            ),
            (
                1_700_000_060_000,
                "一只红色的狐狸",
                "",
                "sd15",
                "dpmpp-2m-karras",
                -2,
                "/old/狐狸.png",
                0,
            ),
            (
                1_700_000_120_000,
                "a lighthouse",
                "",
                "sdxl",
                "DPM++ 2M Karras",
                3,
                "/old/lighthouse.png",
                0,
            ),
        ];
        for (t, prompt, neg, model, sampler, seed, path, fav) in rows {
            conn.execute(
                "INSERT INTO generations (created_at, prompt, negative_prompt, model, sampler, steps, guidance, \
                 width, height, seed, image_path, favourite, extra) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 20, 7.5, 512, 512, ?6, ?7, ?8, '[[\"Clip skip\",\"2\"]]')",
                rusqlite::params![t, prompt, neg, model, sampler, seed, path, fav],
            )
            .unwrap();
        }
    }

    let h = History::open(&db).unwrap();
    assert_eq!(h.schema_version().unwrap(), schema::CURRENT_VERSION);
    const { assert!(schema::CURRENT_VERSION >= 3) };
    let all = h.list(&Query::all()).unwrap();
    assert_eq!(
        prompts(&all),
        ["a lighthouse", "一只红色的狐狸", "a red fox in the snow"]
    );
    assert_eq!(
        all[0].params.sampler,
        SamplerKind::DpmPp2mKarras,
        "A1111 names in old rows still read"
    );
    assert_eq!(all[1].params.seed, u64::MAX - 1, "seeds are stored bit-cast");
    // "Clip skip" kept as an extra by old rows now has its own field.
    assert!(all[2].params.extra.is_empty(), "{:?}", all[2].params.extra);
    assert_eq!(all[2].params.clip_skip, 2);
    assert_eq!(all[2].params.prompt_syntax, lantern::recipe::PromptSyntax::Plain);
    assert!(all[2].favourite);
    // Rows written by version 1 are in the full-text index that version 2 added.
    assert_eq!(search(&h, "红色的狐狸"), ["一只红色的狐狸"]);
    assert_eq!(search(&h, "snow"), ["a red fox in the snow"]);
    // Version 3's column works for old and new rows.
    let mut e = NewEntry::new(params("new one", "", "sd15", 9), tmp.path().join("new.png"));
    e.file_sha256 = Some("ff".repeat(32));
    let id = h.insert(&e).unwrap();
    assert_eq!(h.find_by_hash(&"ff".repeat(32)).unwrap().unwrap().id, id);
    h.check_integrity().unwrap();
    drop(h);

    // Opening again is a no-op.
    let h = History::open(&db).unwrap();
    assert_eq!(h.count(&Query::all()).unwrap(), 4);
    drop(h);

    // A database from a newer Lantern is refused, and left alone even by the recovering open.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let err = History::open_or_recover(&db, tmp.path()).err().expect("refused");
    assert!(matches!(err, Error::History(_)), "{err}");
    assert!(err.to_string().contains("99"), "{err}");
    assert!(db.exists());
}

/// A history with `n` real PNGs in `outputs`, some favourites; returns the image paths.
fn populated(db: &Path, outputs: &Path, n: usize) -> Vec<PathBuf> {
    let h = History::open(db).unwrap();
    let items: Vec<Recipe> = (0..n)
        .map(|i| {
            let prompt = if i % 2 == 0 {
                format!("a red fox number {i}")
            } else {
                format!("狐狸 第{i}张")
            };
            params(&prompt, "blurry", "sd15", i as u64)
        })
        .collect();
    let ids = fill(&h, outputs, &items);
    for id in ids.iter().step_by(7) {
        h.set_favourite(*id, true).unwrap();
    }
    let paths = h
        .list(&Query::all())
        .unwrap()
        .into_iter()
        .map(|e| e.image_path)
        .collect();
    drop(h); // checkpoints the WAL into the main file
    paths
}

fn assert_rebuilt(db: &Path, outputs: &Path, expect: &[PathBuf]) {
    let opened = History::open_or_recover(db, outputs).unwrap();
    let notice = opened.notice.expect("a recovery notice");
    assert_eq!(notice.rebuilt, expect.len());
    let text = notice.to_string();
    assert!(text.starts_with("history was damaged; moved aside to "), "{text}");
    assert!(
        text.contains(&format!("rebuilt {} entries from PNGs", expect.len())),
        "{text}"
    );
    let moved = notice.moved_to.file_name().unwrap().to_string_lossy().into_owned();
    assert!(moved.starts_with("history.sqlite3.corrupt-"), "{moved}");
    assert!(notice.moved_to.exists());

    let h = opened.history;
    h.check_integrity().unwrap();
    assert_eq!(h.count(&Query::all()).unwrap(), expect.len() as u64);
    for path in expect {
        let e = h
            .find_by_path(path)
            .unwrap()
            .unwrap_or_else(|| panic!("{} not rebuilt", path.display()));
        assert_eq!(e.params.negative_prompt, "blurry");
    }
    assert_eq!(search(&h, "狐狸").len(), expect.len() / 2);
    drop(h);

    // Opening again: healthy, no notice.
    let again = History::open_or_recover(db, outputs).unwrap();
    assert!(again.notice.is_none());
}

#[test]
fn garbage_database_is_moved_aside_and_rebuilt_from_pngs() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, outputs) = (tmp.path().join("history.sqlite3"), tmp.path().join("outputs"));
    let paths = populated(&db, &outputs, 12);
    let garbage: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&db, &garbage).unwrap();

    assert!(matches!(History::open(&db), Err(Error::HistoryCorrupt { .. })));
    assert_rebuilt(&db, &outputs, &paths);
    let aside: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".corrupt-") && !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(tmp.path().join(&aside[0])).unwrap(),
        garbage,
        "the damaged file is kept as it was"
    );
}

#[test]
fn moving_aside_takes_the_wal_and_shm_along() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("history.sqlite3");
    for (suffix, body) in [("", "db"), ("-wal", "wal"), ("-shm", "shm")] {
        std::fs::write(format!("{}{suffix}", db.display()), body).unwrap();
    }
    let first = lantern::history::recovery::move_aside(&db).unwrap();
    std::fs::write(&db, "db2").unwrap();
    let second = lantern::history::recovery::move_aside(&db).unwrap();
    assert_ne!(
        first, second,
        "a second damage in the same second does not overwrite the first"
    );
    for (suffix, body) in [("", "db"), ("-wal", "wal"), ("-shm", "shm")] {
        assert_eq!(
            std::fs::read_to_string(format!("{}{suffix}", first.display())).unwrap(),
            body
        );
        assert!(!Path::new(&format!("{}{suffix}", db.display())).exists());
    }
    assert_eq!(std::fs::read_to_string(&second).unwrap(), "db2");
}

#[test]
fn truncated_database_is_moved_aside_and_rebuilt_from_pngs() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, outputs) = (tmp.path().join("history.sqlite3"), tmp.path().join("outputs"));
    let paths = populated(&db, &outputs, 60);
    let len = std::fs::metadata(&db).unwrap().len();
    assert!(len > 8 * 4096, "the database should span many pages, has {len} bytes");
    let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    assert_rebuilt(&db, &outputs, &paths);
}

#[test]
fn an_empty_or_missing_file_is_just_a_new_history() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("sub/dir/history.sqlite3");
    let opened = History::open_or_recover(&db, &tmp.path().join("outputs")).unwrap();
    assert!(opened.notice.is_none());
    drop(opened);
    let empty = tmp.path().join("empty.sqlite3");
    std::fs::write(&empty, b"").unwrap();
    let opened = History::open_or_recover(&empty, tmp.path()).unwrap();
    assert!(opened.notice.is_none());
}

// ---- SIGKILL in the middle of writing ----

const CHILD_ENV: &str = "LANTERN_TEST_KILLED_WRITER_DB";

/// The child half of `killed_writer_keeps_every_committed_row`: does nothing unless started by
/// it. Inserts forever (single rows and batches of 25), printing each id once committed.
#[test]
fn killed_writer_child() {
    let Some(db) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut h = History::open(Path::new(&db)).unwrap();
    let stdout = std::io::stdout();
    for round in 0u64.. {
        let make = |i: u64| {
            let p = params(
                &format!("killed writer {round} {i} 狐狸"),
                "blurry",
                "sd15",
                round * 100 + i,
            );
            NewEntry::new(p, format!("/nonexistent/killed-{round}-{i}.png"))
        };
        let ids = if round % 2 == 0 {
            vec![h.insert(&make(0)).unwrap()]
        } else {
            h.insert_many(&(0..25).map(make).collect::<Vec<_>>()).unwrap()
        };
        let mut out = stdout.lock();
        for id in ids {
            writeln!(out, "COMMITTED {id}").unwrap();
        }
        out.flush().unwrap();
    }
}

#[test]
fn killed_writer_keeps_every_committed_row() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("history.sqlite3");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "killed_writer_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut committed = Vec::new();
    let started = Instant::now();
    while committed.len() < 400 {
        let line = lines
            .next()
            .expect("the child stopped writing before it was killed")
            .unwrap();
        if let Some(id) = line.strip_prefix("COMMITTED ") {
            committed.push(id.parse::<i64>().unwrap());
        }
        assert!(started.elapsed() < Duration::from_secs(120), "child too slow");
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructors, no checkpoint, mid-transaction
    let status = child.wait().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
    assert!(!status.success());
    // Ids committed and printed before the kill are still in the pipe.
    for line in lines.map_while(Result::ok) {
        if let Some(id) = line.strip_prefix("COMMITTED ") {
            committed.push(id.parse::<i64>().unwrap());
        }
    }

    let h = History::open(&db).expect("the database opens after SIGKILL");
    h.check_integrity().unwrap();
    for id in &committed {
        assert!(h.get(*id).unwrap().is_some(), "committed row {id} lost");
    }
    let count = h.count(&Query::all()).unwrap();
    assert!(
        count >= committed.len() as u64,
        "{count} rows < {} committed",
        committed.len()
    );
    eprintln!(
        "killed writer: {} rows reported committed, {count} in the database",
        committed.len()
    );
    assert_eq!(
        h.count(&Query::search("killed writer")).unwrap(),
        count,
        "index in step"
    );
}

// ---- import, export, thumbnails, CLI ----

#[test]
fn import_adds_new_pngs_skips_known_ones_and_finds_moved_files() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("pictures");
    let nested = folder.join("2026/11");
    std::fs::create_dir_all(&nested).unwrap();
    let ours = save_png(&folder, &image(1), &params("a red fox", "blurry", "sd15", 11), None).unwrap();
    let in_nested = save_png(&nested, &image(2), &params("狐狸", "", "sdxl", 12), None).unwrap();
    // As AUTOMATIC1111 writes it.
    let a1111_text = "a castle on a hill\nNegative prompt: fog\nSteps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, \
                      Seed: 77, Size: 16x16, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.6.0";
    let a1111 = folder.join("00001-77.png");
    std::fs::write(
        &a1111,
        lantern::output::png::encode_png(&image(3), Some(a1111_text)).unwrap(),
    )
    .unwrap();
    // A PNG without parameters, a broken one, something else, and a hidden folder.
    std::fs::write(
        folder.join("plain.png"),
        lantern::output::png::encode_png(&image(4), None).unwrap(),
    )
    .unwrap();
    std::fs::write(folder.join("broken.png"), b"\x89PNG\r\n\x1a\nnope").unwrap();
    std::fs::write(folder.join("notes.txt"), b"hello").unwrap();
    std::fs::create_dir_all(folder.join(".cache")).unwrap();
    std::fs::copy(&ours, folder.join(".cache/copy.png")).unwrap();

    let mut h = History::open(&tmp.path().join("history.sqlite3")).unwrap();
    let report = h.import_dir(&folder).unwrap();
    assert_eq!(report.added, 3, "{report:?}");
    assert_eq!(report.without_parameters, 1, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].0.ends_with("broken.png"));

    let castle = h.find_by_path(&a1111).unwrap().unwrap();
    assert_eq!(castle.params.prompt, "a castle on a hill");
    assert_eq!(castle.params.sampler, SamplerKind::DpmPp2mKarras);
    assert_eq!(
        (castle.params.guidance, castle.params.seed, castle.params.steps),
        (6.5, 77, 28)
    );
    assert_eq!(castle.params.model, "v1-5-pruned-emaonly");
    assert_eq!(h.find_by_path(&in_nested).unwrap().unwrap().params.model, "sdxl");

    // Again: nothing new.
    let again = h.import_dir(&folder).unwrap();
    assert_eq!((again.added, again.already_known), (0, 3), "{again:?}");

    // A copy elsewhere is the same image; a moved file is found again, favourite kept.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(&ours, other.join("copy.png")).unwrap();
    let id = h.find_by_path(&ours).unwrap().unwrap().id;
    h.set_favourite(id, true).unwrap();
    assert_eq!(h.import_dir(&other).unwrap().already_known, 1);
    let moved_to = other.join("moved.png");
    std::fs::remove_file(other.join("copy.png")).unwrap();
    std::fs::rename(&ours, &moved_to).unwrap();
    let report = h.import_dir(&other).unwrap();
    assert_eq!((report.relinked, report.added), (1, 0), "{report:?}");
    let relinked = h.get(id).unwrap().unwrap();
    assert_eq!(relinked.image_path, std::fs::canonicalize(&moved_to).unwrap());
    assert!(relinked.favourite);
    assert_eq!(h.count(&Query::all()).unwrap(), 3);
}

/// `lantern import` on a folder with a FIFO and a link to `/dev/zero` named `.png` (which once
/// blocked forever and filled the memory), a link out of the folder, a link inside it, and a
/// PNG whose compressed `parameters` inflates to 64 MiB: it finishes, skips or refuses each
/// of those, and imports the real PNGs.
#[cfg(unix)]
#[test]
fn import_skips_fifos_devices_and_links_out_of_the_folder() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("pictures");
    let outside = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let real = save_png(&folder, &image(1), &params("a red fox", "", "sd15", 1), None).unwrap();
    let a1111 = |prompt: &str, salt: u8| {
        let text = format!("{prompt}\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 16x16, Model: m");
        lantern::output::png::encode_png(&image(salt), Some(&text)).unwrap()
    };
    // A plain file without the extension, reached through a link inside the folder.
    std::fs::write(folder.join("keep.dat"), a1111("through a link", 2)).unwrap();
    symlink(folder.join("keep.dat"), folder.join("linked.png")).unwrap();
    // A PNG outside, reached through a link: not imported.
    std::fs::write(outside.join("secret.png"), a1111("outside", 3)).unwrap();
    symlink(outside.join("secret.png"), folder.join("out.png")).unwrap();
    // A link to a device, and a FIFO.
    symlink("/dev/zero", folder.join("z.png")).unwrap();
    let fifo = folder.join("a.png");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    // A decompression bomb: read, refused, reported.
    let bytes = zlib_bomb::png_with_compressed_parameters(&zlib_bomb::zlib_run(b'a', 64 << 20), false);
    std::fs::write(folder.join("bomb.png"), bytes).unwrap();
    // A (sparse) file far over the per-file cap: refused without reading it.
    let big = std::fs::File::create(folder.join("big.png")).unwrap();
    big.set_len(300 << 20).unwrap();
    drop(big);

    // Should the import open the FIFO, a writer unblocks it after a while so the test fails
    // instead of hanging.
    let done = Arc::new(AtomicBool::new(false));
    {
        let (done, fifo) = (done.clone(), fifo.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(60));
            if !done.load(Ordering::SeqCst) {
                let _ = std::fs::OpenOptions::new().write(true).open(fifo);
            }
        });
    }
    let mut h = History::open(&tmp.path().join("history.sqlite3")).unwrap();
    let mut out = Vec::new();
    lantern::cli::history::import_with(&mut h, &ImportArgs { dir: folder.clone() }, &mut out).unwrap();
    done.store(true, Ordering::SeqCst);
    let msg = String::from_utf8(out).unwrap();

    assert!(msg.contains("added 2"), "{msg}");
    assert!(msg.contains("unreadable 2"), "{msg}");
    assert!(msg.contains("not plain files 3"), "{msg}");
    for name in ["a.png", "z.png", "out.png"] {
        assert!(
            msg.lines()
                .any(|l| l.contains("skipped") && l.contains(&*folder.join(name).to_string_lossy())),
            "{name}: {msg}"
        );
    }
    assert!(msg.contains("larger than 1 MiB once decompressed"), "{msg}");
    assert!(msg.contains("larger than 256 MiB"), "{msg}");
    assert!(h.find_by_path(&real).unwrap().is_some());
    let linked = h.find_by_path(&folder.join("linked.png")).unwrap().unwrap();
    assert_eq!(linked.params.prompt, "through a link");
    assert!(h.find_by_path(&folder.join("out.png")).unwrap().is_none());
    assert_eq!(h.count(&Query::all()).unwrap(), 2);

    // The report itself, with the reasons.
    let report = h.import_dir(&folder).unwrap();
    assert_eq!((report.added, report.already_known), (0, 2), "{report:?}");
    let why = |name: &str| {
        report
            .skipped
            .iter()
            .find(|(p, _)| p.ends_with(name))
            .map(|(_, w)| w.clone())
            .unwrap_or_default()
    };
    assert!(why("a.png").contains("not a plain file"), "{report:?}");
    assert!(why("z.png").contains("outside the folder"), "{report:?}");
    assert!(why("out.png").contains("outside the folder"), "{report:?}");
    assert_eq!(report.failed.len(), 2, "{report:?}");
    assert!(report.failed[0].0.ends_with("big.png"), "{report:?}");
    assert!(report.failed[1].0.ends_with("bomb.png"), "{report:?}");
}

#[test]
fn export_json_and_cli_listing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = History::open(&tmp.path().join("history.sqlite3")).unwrap();
    fill(&h, &tmp.path().join("outputs"), &sample_items());

    let file = tmp.path().join("export.json");
    assert_eq!(h.export_json(&file).unwrap(), 5);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 5);
    for key in [
        "prompt",
        "negative_prompt",
        "seed",
        "steps",
        "guidance",
        "width",
        "height",
        "sampler",
        "model",
        "path",
        "created_at",
    ] {
        assert!(items.iter().all(|o| o.get(key).is_some()), "missing {key}");
    }
    assert_eq!(items[4]["prompt"], "A red fox in the snow");
    assert_eq!(items[4]["sampler"], "euler-a");
    assert_eq!(items[4]["created_at"], "2026-09-21T14:13:20.000Z");
    assert!(h.export_json(&tmp.path().join("missing/x.json")).is_err());

    let run = |h: &History, args: HistoryArgs| {
        let mut out = Vec::new();
        lantern::cli::history::run_with(h, &args, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let list = |search: Option<&str>, json: bool| HistoryArgs {
        command: None,
        list: ListArgs {
            search: search.map(str::to_string),
            limit: 10,
            json,
            ..ListArgs::default()
        },
    };
    let out = run(&h, list(Some("狐狸"), true));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["prompt"], "一只红色的狐狸在雪地里");
    assert_eq!(v[0]["seed"], 2);

    let table = run(&h, list(None, false));
    assert!(table.lines().next().unwrap().contains("PROMPT"), "{table}");
    assert!(table.contains("portrait of an old sailor"), "{table}");
    assert!(table.contains("Euler a"), "{table}");
    assert!(table.trim_end().ends_with("5 of 5 entries"), "{table}");

    let exported = tmp.path().join("cli.json");
    let msg = run(
        &h,
        HistoryArgs {
            command: Some(HistoryCommand::Export(lantern::cli::history::ExportArgs {
                file: exported.clone(),
            })),
            list: ListArgs::default(),
        },
    );
    assert!(msg.contains("exported 5 entries"), "{msg}");
    assert!(exported.exists());

    let mut out = Vec::new();
    lantern::cli::history::import_with(
        &mut h,
        &ImportArgs {
            dir: tmp.path().join("outputs"),
        },
        &mut out,
    )
    .unwrap();
    let msg = String::from_utf8(out).unwrap();
    assert!(msg.contains("added 0, already known 5"), "{msg}");
}

#[test]
fn thumbnails_are_made_once_and_follow_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("thumbs");
    let big = RgbImage::from_raw(96, 64, [200u8, 100, 50].repeat(96 * 64)).unwrap();
    let png = save_png(tmp.path(), &big, &Recipe::default(), Some(&tmp.path().join("big.png"))).unwrap();

    let t1 = thumbnail_in(&cache, &png, 32).unwrap();
    let small = decode_png_file(&t1).unwrap();
    assert_eq!((small.width, small.height), (32, 21));
    assert!(small.data.chunks(3).all(|p| p == [200, 100, 50]));
    let made = std::fs::metadata(&t1).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(thumbnail_in(&cache, &png, 32).unwrap(), t1);
    assert_eq!(
        std::fs::metadata(&t1).unwrap().modified().unwrap(),
        made,
        "cached, not remade"
    );
    assert_ne!(
        thumbnail_in(&cache, &png, 16).unwrap(),
        t1,
        "another size, another file"
    );

    // Many threads at once get the same, whole file.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (cache, png) = (cache.clone(), png.clone());
            std::thread::spawn(move || thumbnail_in(&cache, &png, 24).unwrap())
        })
        .collect();
    let results: Vec<PathBuf> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    decode_png_file(&results[0]).unwrap();

    // A changed image gets a new thumbnail.
    std::thread::sleep(Duration::from_millis(20));
    let red = RgbImage::from_raw(96, 64, [255u8, 0, 0].repeat(96 * 64)).unwrap();
    save_png(tmp.path(), &red, &Recipe::default(), Some(&png)).unwrap();
    let t2 = thumbnail_in(&cache, &png, 32).unwrap();
    assert_ne!(t2, t1);
    assert_eq!(decode_png_file(&t2).unwrap().pixel(0, 0), [255, 0, 0]);

    assert!(thumbnail_in(&cache, &tmp.path().join("missing.png"), 32).is_err());
    std::fs::write(tmp.path().join("bad.png"), b"garbage").unwrap();
    assert!(thumbnail_in(&cache, &tmp.path().join("bad.png"), 32).is_err());
}

#[test]
fn record_in_stores_duration_and_content_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let h = History::open(&tmp.path().join("history.sqlite3")).unwrap();
    let p = params("a red fox", "", "sd15", 5);
    let path = save_png(&tmp.path().join("outputs"), &image(9), &p, None).unwrap();
    let id = lantern::history::record_in(&h, &p, &path, Duration::from_millis(4321)).unwrap();
    let e = h.get(id).unwrap().unwrap();
    assert_eq!(e.duration_ms, Some(4321));
    assert_eq!(e.params, p);
    let hash = lantern::history::import::sha256_hex(&std::fs::read(&path).unwrap());
    assert_eq!(h.find_by_hash(&hash).unwrap().unwrap().id, id);
}

/// The noise source is kept with the recipe; rows recorded before it existed (recipe JSON
/// without `rng`, or no JSON at all) were made with Lantern's own generator and say so.
#[test]
fn noise_source_is_stored_and_old_rows_read_as_lantern() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, outputs) = (tmp.path().join("history.sqlite3"), tmp.path().join("out"));
    std::fs::create_dir_all(&outputs).unwrap();
    let h = History::open(&db).unwrap();
    let items: Vec<Recipe> = NoiseKind::ALL
        .into_iter()
        .enumerate()
        .map(|(i, rng)| Recipe {
            rng,
            ..params(&format!("boat {i}"), "", "sd15", 10 + i as u64)
        })
        .collect();
    let ids = fill(&h, &outputs, &items);
    for (id, want) in ids.iter().zip(&items) {
        assert_eq!(&h.get(*id).unwrap().unwrap().params, want);
    }
    drop(h);

    let conn = rusqlite::Connection::open(&db).unwrap();
    let json: String = conn
        .query_row("SELECT recipe FROM generations WHERE id = ?1", [ids[0]], |r| r.get(0))
        .unwrap();
    assert!(json.contains(r#""rng":"cpu""#), "{json}");
    conn.execute(
        "UPDATE generations SET recipe = json_remove(recipe, '$.rng') WHERE id = ?1",
        [ids[0]],
    )
    .unwrap();
    conn.execute("UPDATE generations SET recipe = NULL WHERE id = ?1", [ids[1]])
        .unwrap();
    drop(conn);
    let h = History::open(&db).unwrap();
    for id in &ids[..2] {
        let e = h.get(*id).unwrap().unwrap();
        assert_eq!(e.params.rng, NoiseKind::Lantern, "row {id}");
    }
    assert_eq!(h.get(ids[2]).unwrap().unwrap().params.rng, NoiseKind::Lantern);
    // "Use these settings" keeps the source.
    assert_eq!(
        h.get(ids[0]).unwrap().unwrap().params.as_single().rng,
        NoiseKind::Lantern
    );
}
