//! Fuzzing the parser surface on stable Rust: the PNG chunk and metadata reader, the A1111
//! `parameters` parser, start pictures (init images and masks in every format the `image`
//! crate reads, resized in each mode), the safetensors header and weight-shape checks, the config readers
//! with the model loaders behind them, the prompt parser (emphasis, chunks, `<lora:…>` tags,
//! Ctrl+Up/Down) and LoRA files (key mapper, layer checks, the merge and its exact restore). Each target mutates a seed corpus taken from the
//! fixtures (real PNGs, real configs, real safetensors headers) with a fixed-seed generator,
//! and every input must give a value or an error: a panic fails the test with the input saved
//! (an abort or a hang would end or stall the run, which is as visible).
//!
//! `cargo test` runs a short pass of each target. `tools/fuzz.sh` runs the same targets long:
//! `LANTERN_FUZZ_ITERS` inputs per target, `LANTERN_FUZZ_SEED` to start elsewhere, and
//! `LANTERN_FUZZ_OUT` where failing inputs (and each target's slowest) are written (default: a
//! temp folder), `LANTERN_FUZZ_REPLAY` to run one saved input again.

mod support;
#[path = "support/zlib_bomb.rs"]
mod zlib_bomb;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{DType, Device};
use serde_json::{Value, json};
use support::fixtures;

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn seed() -> u64 {
    env_usize("LANTERN_FUZZ_SEED", 0x1a17e12) as u64
}

/// Byte-level mutations, the kinds coverage fuzzers use: flips, interesting values, inserts,
/// deletes, duplicated runs, splices from another corpus entry, truncation.
fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = *rng.pick(&[0u8, 0xff, 0x7f, 0x80, b'"', b'{', b'}', b',', b':', b'0', b'9', b'\n']);
            }
            2 if len >= 4 => {
                // An interesting 32-bit value, big- or little-endian (chunk lengths are BE,
                // safetensors' header length LE).
                let i = rng.below(len - 3);
                let v = *rng.pick(&[0u32, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, len as u32, 13, 8]);
                let bytes = if rng.chance(2) {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                data[i..i + 4].copy_from_slice(&bytes);
            }
            3 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(i..i, junk);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                data.drain(i..i + n);
            }
            5 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let run = data[i..i + n].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, run);
            }
            6 if !corpus.is_empty() => {
                let other = rng.pick(corpus);
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let n = 1 + rng.below((other.len() - i).min(256));
                    let at = rng.below(len + 1);
                    data.splice(at..at, other[i..i + n].iter().copied());
                }
            }
            7 if len > 0 => data.truncate(rng.below(len)),
            _ => {
                if len > 0 {
                    let i = rng.below(len);
                    data[i] = rng.next() as u8;
                }
            }
        }
    }
}

/// Values that break readers: huge, negative, fractional, zero, wrong types, long lists.
fn hostile_value(rng: &mut Rng, old: &Value) -> Value {
    let near = old.as_f64().unwrap_or(4.0);
    match rng.below(16) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(1e12),
        3 => json!(u64::MAX),
        4 => json!(i64::MIN),
        5 => json!(near + 0.5),
        6 => json!(near * 2.0),
        7 => json!((near as i64).saturating_add(1)),
        8 => json!(null),
        9 => json!("32"),
        10 => json!(true),
        11 => json!([]),
        12 => {
            let n = rng.below(40);
            Value::Array((0..n).map(|_| json!(1 + rng.below(64))).collect())
        }
        13 => json!({"a": 1}),
        14 => json!(1e308),
        _ => json!(1u64 << (rng.below(64))),
    }
}

/// JSON-aware mutations of an object: a field (or a list entry) given a hostile value, a field
/// removed, a field borrowed from another corpus entry, or nested lists replaced.
fn mutate_json(rng: &mut Rng, json: &mut Value, corpus: &[Value]) {
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let Some(obj) = json.as_object_mut() else {
            return;
        };
        let keys: Vec<String> = obj.keys().cloned().collect();
        if keys.is_empty() {
            return;
        }
        let key = rng.pick(&keys).clone();
        match rng.below(6) {
            0 => {
                obj.remove(&key);
            }
            1 => {
                if let Some(other) = rng.pick(corpus).as_object() {
                    let okeys: Vec<&String> = other.keys().collect();
                    if !okeys.is_empty() {
                        let k = (*rng.pick(&okeys)).clone();
                        obj.insert(k.clone(), other[&k].clone());
                    }
                }
            }
            2 => {
                if let Some(Value::Array(items)) = obj.get_mut(&key)
                    && !items.is_empty()
                {
                    let i = rng.below(items.len());
                    let old = items[i].clone();
                    items[i] = hostile_value(rng, &old);
                } else {
                    let old = obj[&key].clone();
                    obj.insert(key, hostile_value(rng, &old));
                }
            }
            3 => {
                if let Some(Value::Array(items)) = obj.get_mut(&key) {
                    match rng.below(3) {
                        0 => {
                            items.pop();
                        }
                        1 if !items.is_empty() => {
                            let last = items[items.len() - 1].clone();
                            items.push(last);
                        }
                        _ => items.reverse(),
                    }
                }
            }
            4 => {
                // Recurse into nested objects (CLIP's text_config, safetensors entries).
                if let Some(inner @ Value::Object(_)) = obj.get_mut(&key) {
                    mutate_json(rng, inner, corpus);
                }
            }
            _ => {
                let old = obj[&key].clone();
                obj.insert(key, hostile_value(rng, &old));
            }
        }
    }
}

/// Runs `iters` inputs made by `make` through `run`; panics are collected with their inputs.
fn fuzz(name: &str, iters: usize, make: impl FnMut(&mut Rng) -> Vec<u8>, run: impl Fn(&[u8])) {
    // `LANTERN_FUZZ_REPLAY=dir/png-17.bin`: run that one saved input (of this target) and say
    // how long it took.
    if let Some(file) = std::env::var_os("LANTERN_FUZZ_REPLAY").map(PathBuf::from) {
        let file_name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if file_name.starts_with(&format!("{name}-")) {
            let input = std::fs::read(&file).unwrap();
            let t = Instant::now();
            run(&input);
            eprintln!("replay {}: {:.1} ms", file.display(), t.elapsed().as_secs_f64() * 1e3);
        }
        return;
    }
    fuzz_loop(name, iters, make, run)
}

/// The loop itself: `iters` inputs from `make` through `run`, panics collected and failed on.
fn fuzz_loop(name: &str, iters: usize, mut make: impl FnMut(&mut Rng) -> Vec<u8>, run: impl Fn(&[u8])) {
    let out = std::env::var_os("LANTERN_FUZZ_OUT").map(PathBuf::from);
    let mut rng = Rng::new(
        seed()
            ^ name
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)),
    );
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, 0usize);
    let started = Instant::now();
    for i in 0..iters {
        let input = make(&mut rng);
        let t = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| run(&input)));
        let took = t.elapsed();
        if took > slowest.0 {
            slowest = (took, i);
            // Kept for a look at what made it slow (a hang in the making).
            if let Some(dir) = &out {
                let _ = std::fs::write(dir.join(format!("{name}-slowest.bin")), &input);
            }
        }
        if let Err(panic) = result {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let dir = out.clone().unwrap_or_else(std::env::temp_dir).join("lantern-fuzz");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{name}-{i}.bin"));
            let _ = std::fs::write(&file, &input);
            failures.push(format!("input {i} ({}): {why}", file.display()));
        }
    }
    // Reported, never asserted: the long run reads these lines.
    eprintln!(
        "fuzz {name}: {iters} inputs in {:.1} s, slowest {:.1} ms (input {}), {} panics",
        started.elapsed().as_secs_f64(),
        slowest.0.as_secs_f64() * 1e3,
        slowest.1,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{name}: {} panics:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn iters(short: usize) -> usize {
    env_usize("LANTERN_FUZZ_ITERS", short)
}

/// The harness itself: a target that panics on some inputs fails, naming them.
#[test]
#[should_panic(expected = "panics:")]
fn the_harness_reports_panics() {
    let corpus = vec![vec![1u8, 2, 3, 4, 5]];
    fuzz_loop(
        "self-check",
        30,
        |rng| {
            let mut data = corpus[0].clone();
            mutate_bytes(rng, &mut data, &corpus);
            data
        },
        |input| assert!(input.len() == 5, "length changed"),
    );
}

// ---- PNG chunks and metadata ----

fn png_corpus() -> Vec<Vec<u8>> {
    let mut corpus = Vec::new();
    for family in ["sd1", "sd2", "sdxl"] {
        let dir = fixtures().join("reference").join(family);
        let mut pngs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .collect();
        pngs.sort();
        corpus.extend(pngs.iter().take(2).map(|p| std::fs::read(p).unwrap()));
    }
    let image = lantern::output::RgbImage::new(16, 8);
    let text = "a fox\nNegative prompt: blurry\nSteps: 2, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 16x8";
    corpus.push(lantern::output::png::encode_png(&image, Some(text)).unwrap());
    corpus.push(lantern::output::png::encode_png(&image, Some("狐 ünïcode")).unwrap());
    corpus.push(lantern::output::png::encode_png(&image, None).unwrap());
    // Compressed text chunks (zTXt and iTXt), small ones and one that inflates to 64 KB.
    corpus.push(zlib_bomb::png_with_compressed_parameters(
        &zlib_bomb::zlib_run(b'a', 300),
        false,
    ));
    corpus.push(zlib_bomb::png_with_compressed_parameters(
        &zlib_bomb::zlib_run(b'b', 65536),
        true,
    ));
    corpus
}

/// CRC-32 as PNG chunks use it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Recomputes every chunk's CRC that lies inside the data, so a mutation reaches the chunk
/// parsers instead of stopping at the checksum.
fn fix_png_crcs(data: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= data.len() {
        let len = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 8).checked_add(len) else { return };
        if end + 4 > data.len() {
            return;
        }
        let crc = crc32(&data[at + 4..end]);
        data[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        at = end + 4;
    }
}

/// The import path: the text, then the parameters, then the pixels.
fn read_png(bytes: &[u8]) {
    if let Ok(Some(text)) = lantern::output::png::read_parameters(bytes)
        && let Ok(p) = lantern::output::parameters::parse_parameters(&text)
    {
        let _ = p.to_recipe();
    }
    let _ = lantern::output::png::decode_png(bytes);
}

#[test]
fn fuzz_png_reader() {
    let corpus = png_corpus();
    for seed in &corpus {
        read_png(seed);
        let mut fixed = seed.clone();
        fix_png_crcs(&mut fixed);
        assert_eq!(&fixed, seed, "the CRC fixer keeps valid chunks as they are");
    }
    fuzz(
        "png",
        iters(20000),
        |rng| {
            let mut data = rng.pick(&corpus).clone();
            mutate_bytes(rng, &mut data, &corpus);
            if !rng.chance(4) {
                fix_png_crcs(&mut data);
            }
            data
        },
        read_png,
    );
}

// ---- start pictures (init images and masks, any format) ----

fn picture_corpus() -> Vec<Vec<u8>> {
    let mut corpus = Vec::new();
    for dir in [fixtures().join("pictures"), fixtures().join("reference/img2img")] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e != "json"))
            .take(12)
        {
            corpus.push(std::fs::read(f).unwrap());
        }
    }
    corpus
}

/// What the CLI and the window do with a dropped file: read it as an init image and as a
/// mask, then bring both to a picture's size as the pipeline would.
fn read_picture(bytes: &[u8]) {
    use lantern::source::prepare::{ResizeMode, prepare};
    let image = lantern::source::decode_init_image(bytes);
    let mask = lantern::source::decode_mask(bytes);
    if let (Ok(image), Ok(mask)) = (image, mask)
        && u64::from(image.width) * u64::from(image.height) <= 1 << 16
    {
        let source = lantern::source::SourceImages {
            image,
            mask: Some(mask),
        };
        for mode in ResizeMode::ALL {
            let p = prepare(&source, 24, 16, mode, 2).unwrap();
            assert_eq!((p.image.width, p.image.height), (24, 16));
        }
    }
}

#[test]
fn fuzz_picture_reader() {
    let corpus = picture_corpus();
    assert!(corpus.len() >= 8, "{} seeds", corpus.len());
    fuzz(
        "picture",
        iters(3000),
        |rng| {
            let mut data = rng.pick(&corpus).clone();
            mutate_bytes(rng, &mut data, &corpus);
            if data.starts_with(b"\x89PNG") && !rng.chance(4) {
                fix_png_crcs(&mut data);
            }
            data
        },
        read_picture,
    );
}

// ---- A1111 parameters text ----

fn parameters_corpus() -> Vec<Vec<u8>> {
    use lantern::recipe::Recipe;
    let mut texts = vec![
        "a fox in the snow\nNegative prompt: blurry, lowres\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 1234, Size: 512x768, Model hash: abcdef1234, Model: sd15, Clip skip: 2".to_string(),
        "masterpiece, (best quality:1.2), <lora:foo:0.8>\nSteps: 4, Sampler: Euler a, Schedule type: Karras, CFG scale: 1, Seed: 18446744073709551615, Size: 1024x1024, Lora hashes: \"foo: 1234\", Version: v1.9.0".to_string(),
        "only a prompt".to_string(),
        "Steps: 1".to_string(),
        "p\nNegative prompt: n\nmore negative\nSteps: 30, Sampler: DDIM, CFG scale: 5, Seed: -1, Size: 64x64, Hires upscale: 2, Denoising strength: 0.5, Template: \"a, \\\"b\\\"\"".to_string(),
        "狐狸\nSteps: 2, Sampler: UniPC, CFG scale: 7, Seed: 5, Size: 8x8, ENSD: 31337".to_string(),
    ];
    texts.push(lantern::output::parameters::format_parameters(&Recipe::default()));
    texts.push(lantern::output::parameters::format_parameters(&Recipe {
        prompt: "a \"quoted\", prompt: with colons\nand lines".into(),
        negative_prompt: "bad".into(),
        extra: vec![("Odd key".into(), "x, y: z".into())],
        ..Recipe::default()
    }));
    texts.into_iter().map(String::into_bytes).collect()
}

fn parse_text(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(p) = lantern::output::parameters::parse_parameters(&text) {
        let recipe = p.to_recipe();
        // What we parsed we can write and read again.
        let again = lantern::output::parameters::format_parameters(&recipe);
        let _ = lantern::output::parameters::parse_parameters(&again);
    }
    let _ = lantern::output::parameters::unquote(&text);
}

#[test]
fn fuzz_parameters_parser() {
    let corpus = parameters_corpus();
    fuzz(
        "parameters",
        iters(30000),
        |rng| {
            let mut data = rng.pick(&corpus).clone();
            mutate_bytes(rng, &mut data, &corpus);
            data
        },
        parse_text,
    );
}

// ---- safetensors headers and the weight-shape checks ----

/// A fixture's header as JSON and its data.
fn split_safetensors(bytes: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&bytes[8..8 + n]).unwrap(),
        bytes[8 + n..].to_vec(),
    )
}

fn join_safetensors(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

struct Safetensors {
    /// Headers with their data cut to the first tensors (small files, fast mutations).
    files: Vec<(Value, Vec<u8>)>,
    headers: Vec<Value>,
    /// Names and shapes the original headers promise (what a config would imply).
    expected: Vec<(String, Vec<usize>)>,
}

fn safetensors_corpus() -> Safetensors {
    let mut files = Vec::new();
    let mut expected = Vec::new();
    for rel in [
        "sd1-tiny/vae/diffusion_pytorch_model.safetensors",
        "sd2-tiny/text_encoder/model.safetensors",
    ] {
        let bytes = std::fs::read(fixtures().join(rel)).unwrap();
        let (header, data) = split_safetensors(&bytes);
        // Keep the tensors whose data lies in the first 64 KB, and only that data.
        let mut small = serde_json::Map::new();
        let mut end = 0;
        for (name, info) in header.as_object().unwrap() {
            let Some(offsets) = info.get("data_offsets") else {
                continue;
            };
            let (a, b) = (
                offsets[0].as_u64().unwrap() as usize,
                offsets[1].as_u64().unwrap() as usize,
            );
            if b <= 65536 && small.len() < 24 {
                small.insert(name.clone(), info.clone());
                end = end.max(b);
                let shape = info["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap() as usize)
                    .collect();
                expected.push((name.clone(), shape));
                let _ = a;
            }
        }
        files.push((Value::Object(small), data[..end].to_vec()));
    }
    let headers = files.iter().map(|(h, _)| h.clone()).collect();
    Safetensors {
        files,
        headers,
        expected,
    }
}

fn read_weights(path: &Path, expected: &[(String, Vec<usize>)]) {
    let _ = lantern::hub::safetensors_header::dtypes(path);
    let Ok(w) = lantern::model::weights::Weights::from_files(&[path.to_path_buf()], DType::F32, &Device::Cpu) else {
        return;
    };
    let _ = w.stored_dtype();
    for (name, shape) in expected {
        let _ = w.get(name, shape.as_slice());
        let _ = w.get_unchecked(name);
    }
    let _ = w.with_dtype(DType::F16).get_unchecked(&expected[0].0);
}

#[test]
fn fuzz_safetensors_header_and_shape_checks() {
    let corpus = safetensors_corpus();
    let raw: Vec<Vec<u8>> = corpus
        .files
        .iter()
        .map(|(h, d)| join_safetensors(&serde_json::to_vec(h).unwrap(), d))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    for seed in &raw {
        std::fs::write(&path, seed).unwrap();
        read_weights(&path, &corpus.expected);
    }
    fuzz(
        "safetensors",
        iters(1500),
        |rng| {
            let i = rng.below(corpus.files.len());
            let (header, data) = &corpus.files[i];
            if rng.chance(3) {
                // Bytes anywhere: the length prefix, the JSON text, the data.
                let mut bytes = raw[i].clone();
                mutate_bytes(rng, &mut bytes, &raw);
                bytes
            } else {
                // The header's meaning: shapes, dtypes, offsets, names.
                let mut header = header.clone();
                let names: Vec<String> = header.as_object().unwrap().keys().cloned().collect();
                let name = rng.pick(&names).clone();
                let entry = &mut header[&name];
                let key = *rng.pick(&["shape", "dtype", "data_offsets"]);
                match (key, rng.below(3)) {
                    ("dtype", _) => {
                        entry["dtype"] =
                            json!(*rng.pick(&["F16", "BF16", "F64", "I8", "U8", "BOOL", "F8_E4M3", "X", "I64"]))
                    }
                    _ => {
                        let mut inner = json!({ "v": entry[key].clone() });
                        mutate_json(rng, &mut inner, &corpus.headers);
                        entry[key] = inner["v"].clone();
                    }
                }
                if rng.chance(4) {
                    header["__metadata__"] = json!({"format": "pt", "x": hostile_value(rng, &json!(1))});
                }
                join_safetensors(&serde_json::to_vec(&header).unwrap(), data)
            }
        },
        |bytes| {
            std::fs::write(&path, bytes).unwrap();
            read_weights(&path, &corpus.expected);
        },
    );
}

// ---- configs, and the loaders they size ----

const CONFIGS: &[(&str, &str)] = &[
    ("sd1-tiny", "unet"),
    ("sd1-tiny", "vae"),
    ("sd1-tiny", "text_encoder"),
    ("sd2-tiny", "unet"),
    ("sd2-tiny", "vae"),
    ("sd2-tiny", "text_encoder"),
    ("sdxl-tiny", "unet"),
    ("sdxl-tiny", "vae"),
    ("sdxl-tiny", "text_encoder"),
    ("sdxl-tiny", "text_encoder_2"),
    ("taesd", "taesd-tiny"),
];

/// Reads a mutated config and, when it is accepted, builds its component from the fixture's
/// real weights: every weight's shape is checked against what the config implies.
fn load_component(component: &str, config: &Path, weights: &lantern::model::weights::Weights) {
    use lantern::model::{clip, unet, vae};
    match component {
        "unet" => {
            if let Ok(c) = unet::UnetConfig::read(config) {
                let _ = unet::Unet::load(weights, c);
            }
        }
        "vae" => {
            if let Ok(c) = vae::VaeConfig::read(config) {
                let _ = c.scale_factor();
                let _ = vae::VaeDecoder::load(weights, c);
            }
        }
        "taesd-tiny" => {
            use lantern::model::taesd;
            if let Ok(c) = taesd::TaesdConfig::read(config) {
                let _ = (c.decoder_scale_factor(), c.encoder_scale_factor());
                // An accepted config with weights that fit it runs (a 2×2 latent: cheap).
                if let Ok(d) = taesd::TaesdDecoder::load(weights, c.clone()) {
                    let z = candle_core::Tensor::zeros((1, c.latent_channels, 2, 2), DType::F32, &Device::Cpu).unwrap();
                    let _ = d.decode(&z);
                }
                let _ = taesd::TaesdEncoder::load(weights, c);
            }
        }
        _ => {
            for projection in [false, true] {
                if let Ok(c) = clip::ClipTextConfig::read(config, projection) {
                    let _ = clip::ClipTextModel::load(weights, c);
                }
            }
        }
    }
}

#[test]
fn fuzz_configs_and_loaders() {
    use lantern::model::weights::{VariantPreference, Weights};
    let jsons: Vec<Value> = CONFIGS
        .iter()
        .map(|(f, c)| {
            let text = std::fs::read_to_string(fixtures().join(f).join(c).join("config.json")).unwrap();
            serde_json::from_str(&text).unwrap()
        })
        .collect();
    let weights: Vec<Weights> = CONFIGS
        .iter()
        .map(|(f, c)| {
            let base = if c.starts_with("text_encoder") {
                "model"
            } else {
                "diffusion_pytorch_model"
            };
            Weights::open(
                &fixtures().join(f).join(c),
                base,
                VariantPreference::FullPrecision,
                DType::F32,
                &Device::Cpu,
            )
            .unwrap()
        })
        .collect();
    let raw: Vec<Vec<u8>> = jsons.iter().map(|j| serde_json::to_vec(j).unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    // The seeds themselves load.
    for (i, (_, component)) in CONFIGS.iter().enumerate() {
        std::fs::write(&path, &raw[i]).unwrap();
        load_component(component, &path, &weights[i]);
    }
    fuzz(
        "configs",
        iters(600),
        |rng| {
            let i = rng.below(CONFIGS.len());
            let body = if rng.chance(5) {
                let mut bytes = raw[i].clone();
                mutate_bytes(rng, &mut bytes, &raw);
                bytes
            } else {
                let mut json = jsons[i].clone();
                mutate_json(rng, &mut json, &jsons);
                serde_json::to_vec(&json).unwrap()
            };
            // The first byte says which component (and so which weights) the input is for.
            let mut input = vec![i as u8];
            input.extend(body);
            input
        },
        |input| {
            let i = input[0] as usize % CONFIGS.len();
            std::fs::write(&path, &input[1..]).unwrap();
            load_component(CONFIGS[i].1, &path, &weights[i]);
        },
    );
}

// ---- prompts: A1111's emphasis parser, chunks, extra-network tags, Ctrl+Up/Down ----

fn prompt_corpus() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(fixtures().join("a1111_prompts/cases.json")).unwrap();
    let cases: Value = serde_json::from_str(&text).unwrap();
    let mut prompts: Vec<String> = ["doctests", "cases"]
        .iter()
        .flat_map(|k| cases[k].as_array().unwrap().iter())
        .filter_map(|c| c["prompt"].as_str().map(str::to_owned))
        .collect();
    prompts.extend(
        [
            "a lighthouse, <lora:ink:0.8> <lora:paper:0.5:1.2>, (lanternstyle:1.2)",
            "<lora:a:b:c:d> <lora::> <hypernet:x:1> <lora:名前:-0.7>",
            "((a:1.5) [b] \\(c\\) \\\\ BREAK d:1.2) e",
            "lanternstyle lanternstyle lanternstyle, 狐狸 🦊 , ,,,, BREAK",
        ]
        .map(str::to_owned),
    );
    prompts.into_iter().map(String::into_bytes).collect()
}

/// Everything that reads a prompt's text, on one input: the first four bytes are the
/// selection Ctrl+Up/Down acts on, the rest the text.
fn read_prompt(
    input: &[u8],
    tokenizer: &lantern::text::ClipTokenizer,
    embeddings: &[lantern::text::prompt::EmbeddingTokens],
) {
    use lantern::text::extra_networks;
    use lantern::text::prompt::{self, PromptSyntax};
    let (a, b) = (
        u16::from_le_bytes([input[0], input[1]]) as usize,
        u16::from_le_bytes([input[2], input[3]]) as usize,
    );
    let text = String::from_utf8_lossy(&input[4..]);
    let _ = prompt::parse_prompt_attention(&text);
    for syntax in [PromptSyntax::A1111, PromptSyntax::Plain] {
        let _ = prompt::count_tokens_with(tokenizer, &text, syntax, embeddings);
    }
    if let Ok(stripped) = extra_networks::strip(&text)
        && let Ok(chunked) = prompt::chunk_prompt_with(tokenizer, &stripped.text, embeddings)
    {
        // What the encoder will be given: whole 77-token chunks.
        assert!(chunked.chunks.iter().all(|c| c.ids.len() == 77));
    }
    let _ = prompt::plain_chunk(tokenizer, &text, embeddings);
    for span in extra_networks::lora_spans(&text) {
        // Byte ranges the browser slices the prompt with.
        assert!(
            text.get(span.range.clone()).is_some(),
            "{span:?} in {} bytes",
            text.len()
        );
    }
    let _ = extra_networks::text_without_tags(&text);
    if let Some(edit) = lantern::gui::prompt_weight::adjust(&text, a..b, a % 2 == 0) {
        let n = edit.text.chars().count();
        assert!(
            edit.selection.start <= edit.selection.end && edit.selection.end <= n,
            "selection {:?} in {n} chars",
            edit.selection
        );
    }
}

#[test]
fn fuzz_prompt_parser() {
    use lantern::text::prompt::EmbeddingTokens;
    let tokenizer = lantern::text::ClipTokenizer::from_folder(&fixtures().join("sd1-tiny/tokenizer")).unwrap();
    let embeddings = [EmbeddingTokens {
        ids: tokenizer.encode("lanternstyle"),
        vectors: 2,
        index: 0,
    }];
    let corpus = prompt_corpus();
    fuzz(
        "prompt",
        iters(4000),
        |rng| {
            let mut text = rng.pick(&corpus).clone();
            mutate_bytes(rng, &mut text, &corpus);
            if rng.chance(200) {
                // Depth and count: thousands of brackets or BREAKs.
                let unit = *rng.pick(&["(", "[", "(a:1.1)", "BREAK ", "\\", "<lora:x:1>", ", "]);
                text = unit.repeat(1 + rng.below(3000)).into_bytes();
            }
            let mut input = Vec::with_capacity(text.len() + 4);
            for _ in 0..2 {
                let at = rng.below(text.len() + 8) as u16;
                input.extend(at.to_le_bytes());
            }
            input.extend(text);
            input
        },
        |input| read_prompt(input, &tokenizer, &embeddings),
    );
}

// ---- LoRA files: the key mapper, the layer checks and the in-place merge ----

/// The LoRA fixtures (kohya, PEFT, LoCon for SD 1.x; kohya with SGM names for SDXL) with the
/// model each is for.
const LORAS: &[(&str, &str)] = &[
    ("sd1-kohya.safetensors", "sd1-tiny"),
    ("sd1-peft.safetensors", "sd1-tiny"),
    ("sd1-locon.safetensors", "sd1-tiny"),
    ("sdxl-kohya.safetensors", "sdxl-tiny"),
];

fn one_picture(model: &lantern::model::LoadedModel, prompt: &str, loras: &[PathBuf]) -> Vec<u8> {
    use lantern::pipeline::{self, Event, Request};
    let recipe = lantern::recipe::Recipe {
        prompt: prompt.into(),
        steps: 2,
        width: 64,
        height: 64,
        seed: 7,
        ..Default::default()
    };
    let request = Request {
        lora_files: loras.to_vec(),
        ..Request::new(recipe)
    };
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let mut image = Vec::new();
    pipeline::generate(model, &request, &cancel, &mut |e| {
        if let Event::ImageReady(g) = e {
            image = g.image.data;
        }
    })
    .unwrap();
    image
}

#[test]
fn fuzz_lora_files() {
    use lantern::model::LoadedModel;
    use lantern::model::lora::patch::LoraChoice;
    let lora_dir = fixtures().join("loras");
    let models: Vec<(&str, LoadedModel)> = ["sd1-tiny", "sdxl-tiny"]
        .iter()
        .map(|m| {
            (
                *m,
                LoadedModel::load(&fixtures().join(m), Default::default(), &mut |_| {}).unwrap(),
            )
        })
        .collect();
    let model_for = |name: &str| &models.iter().find(|(m, _)| *m == name).unwrap().1;
    let files: Vec<(Value, Vec<u8>)> = LORAS
        .iter()
        .map(|(f, _)| split_safetensors(&std::fs::read(lora_dir.join(f)).unwrap()))
        .collect();
    let raw: Vec<Vec<u8>> = LORAS
        .iter()
        .map(|(f, _)| std::fs::read(lora_dir.join(f)).unwrap())
        .collect();
    let headers: Vec<Value> = files.iter().map(|(h, _)| h.clone()).collect();
    // Each model wears a good LoRA while the fuzzed ones are tried; its picture before and
    // after must be the same to the bit (refusals change nothing, removals restore exactly).
    let good = |model: &str| {
        let (file, _) = LORAS.iter().find(|(_, m)| *m == model).unwrap();
        let stem = file.trim_end_matches(".safetensors");
        (format!("a lighthouse <lora:{stem}:0.8>"), vec![lora_dir.join(file)])
    };
    let before: Vec<Vec<u8>> = models
        .iter()
        .map(|(m, model)| {
            let (prompt, loras) = good(m);
            one_picture(model, &prompt, &loras)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    fuzz(
        "lora",
        iters(300),
        |rng| {
            let i = rng.below(LORAS.len());
            let body = if rng.chance(4) {
                let mut bytes = raw[i].clone();
                mutate_bytes(rng, &mut bytes, &raw);
                bytes
            } else {
                let (header, data) = &files[i];
                let mut header = header.clone();
                let names: Vec<String> = header.as_object().unwrap().keys().cloned().collect();
                for _ in 0..1 + rng.below(3) {
                    let name = rng.pick(&names).clone();
                    let Some(entry) = header.as_object_mut().unwrap().remove(&name) else {
                        continue;
                    };
                    // The key mapper's input: names renamed, moved to other blocks, other
                    // layouts' suffixes; and the shapes and dtypes the layer checks read.
                    let from = *rng.pick(&[
                        "lora_unet_",
                        "lora_te_",
                        "unet.",
                        "text_encoder.",
                        ".lora_down",
                        ".lora_A",
                        ".alpha",
                        ".lora_up",
                    ]);
                    let to = *rng.pick(&[
                        "lora_te2_",
                        "lora_unet_input_blocks_",
                        "",
                        "unet.down_blocks.9.",
                        ".lora_up",
                        ".lora_B",
                        ".hada_w1_a",
                        ".alpha",
                        ".lora_mid",
                    ]);
                    let number = *rng.pick(&["0", "7", "99", "18446744073709551616"]);
                    let new_name = match rng.below(5) {
                        0 | 1 => name.replace(from, to),
                        2 => name.replace(char::is_numeric, number),
                        3 => format!("{name}{}", *rng.pick(&["_", ".weight", "\u{0}", "é"])),
                        _ => name.clone(),
                    };
                    let mut entry = entry;
                    if rng.chance(2) {
                        let key = *rng.pick(&["shape", "dtype", "data_offsets"]);
                        let mut inner = json!({ "v": entry[key].clone() });
                        mutate_json(rng, &mut inner, &headers);
                        entry[key] = inner["v"].clone();
                    }
                    header.as_object_mut().unwrap().insert(new_name, entry);
                }
                if rng.chance(5) {
                    header["__metadata__"] = json!({"ss_network_dim": hostile_value(rng, &json!(4)), "ss_base_model_version": "sdxl_base_v1-0"});
                }
                join_safetensors(&serde_json::to_vec(&header).unwrap(), data)
            };
            // First byte: which fixture (and so which model); second: the weight.
            let mut input = vec![i as u8, rng.below(256) as u8];
            input.extend(body);
            input
        },
        |input| {
            let (file, model_name) = LORAS[input[0] as usize % LORAS.len()];
            let model = model_for(model_name);
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = dir.path().join(format!("fuzzed-{n}.safetensors"));
            std::fs::write(&path, &input[2..]).unwrap();
            let weight = [1.0, -0.7, 0.0, 1e30, f64::NAN, 2.5][input[1] as usize % 6];
            let good_file = lora_dir.join(file);
            let choice = |name: &str, path: &Path, w: f64| LoraChoice {
                name: name.into(),
                path: path.to_path_buf(),
                te: w,
                unet: w,
            };
            let wearing = [choice("good", &good_file, 0.8)];
            model.lora.apply(&wearing).unwrap();
            let tried = [choice("good", &good_file, 0.8), choice("fuzzed", &path, weight)];
            match model.lora.apply(&tried) {
                Ok(_) => {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(_) => assert_eq!(model.lora.applied().len(), 1, "a refused LoRA left a change behind"),
            }
            let _ = std::fs::remove_file(&path);
        },
    );
    // Reported: how many fuzzed files were merged (the rest were refused).
    eprintln!("fuzz lora: {} inputs merged", accepted.into_inner());
    for ((m, model), before) in models.iter().zip(&before) {
        let (prompt, loras) = good(m);
        assert!(
            one_picture(model, &prompt, &loras) == *before,
            "{m}: the picture with its LoRA changed after the fuzzed LoRAs came and went"
        );
    }
}
