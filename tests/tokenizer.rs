//! The CLIP tokenizer against Hugging Face's CLIPTokenizer (transformers 5.24), id for id.
//!
//! References: tests/fixtures/tokenizer_cases.json (tools/make_fixtures.py, the three fixture
//! tokenizers) and tests/fixtures/tokenizer_variant_cases.json (tools/make_tokenizer_variants.py,
//! the same vocabularies with configs spelled the way real hub repos spell them).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use lantern::text::ClipTokenizer;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(relative: &str) -> ClipTokenizer {
    let dir = fixtures().join(relative);
    ClipTokenizer::from_folder(&dir).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

fn read_json(name: &str) -> Value {
    let text = fs::read_to_string(fixtures().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids_of(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| u32::try_from(v.as_u64().unwrap()).unwrap())
        .collect()
}

/// One line per mismatch: which prompt, where the ids first differ, and both sides there.
fn describe_mismatch(label: &str, prompt: &str, want: &[u32], got: &[u32]) -> String {
    let at = want
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()));
    let short: String = prompt.chars().take(40).collect();
    let window = |ids: &[u32]| ids.iter().skip(at).take(6).copied().collect::<Vec<_>>();
    format!(
        "{label} {short:?}: first difference at {at} (len {} vs {}): want {:?} got {:?}\n",
        want.len(),
        got.len(),
        window(want),
        window(got)
    )
}

#[test]
fn every_fixture_case_matches_hugging_face() {
    let cases = read_json("tokenizer_cases.json");
    let cases = cases["cases"].as_array().unwrap();
    let names: Vec<String> = cases[0]["ids"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(names.len(), 3, "expected the three fixture tokenizers");
    let mut failures = String::new();
    let mut checked = 0;
    for name in &names {
        let tok = load(name);
        for case in cases {
            let prompt = case["prompt"].as_str().unwrap();
            let want = ids_of(&case["ids"][name.as_str()]);
            let got = tok.encode_for_model(prompt);
            assert_eq!(want.len(), 77);
            if got != want {
                failures.push_str(&describe_mismatch(name, prompt, &want, &got));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "mismatches against Hugging Face:\n{failures}");
    assert!(checked >= 150, "only {checked} cases checked");
}

/// Builds a variant folder: its config files plus the vocabulary files of its base tokenizer.
fn variant_folder(name: &str, spec: &Value) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("tokenizer-variants")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let base = fixtures().join(spec["base"].as_str().unwrap());
    for file in spec["copy"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        fs::copy(base.join(file), dir.join(file)).unwrap();
    }
    let configs = fixtures().join("tokenizer_variants").join(name);
    if configs.is_dir() {
        for entry in fs::read_dir(configs).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    dir
}

#[test]
fn hub_style_config_variants_match_hugging_face() {
    let reference = read_json("tokenizer_variant_cases.json");
    let prompts: Vec<&str> = reference["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let variants = reference["variants"].as_object().unwrap();
    assert!(variants.len() >= 8);
    let mut failures = String::new();
    for (name, spec) in variants {
        let tok = ClipTokenizer::from_folder(&variant_folder(name, spec)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            u64::from(tok.pad_id()),
            spec["pad_id"].as_u64().unwrap(),
            "{name}: pad id"
        );
        assert_eq!(
            tok.max_length() as u64,
            spec["max_length"].as_u64().unwrap(),
            "{name}: max_length"
        );
        let all_ids = spec["ids"].as_array().unwrap();
        let decoded = spec["decoded"].as_array().unwrap();
        for ((prompt, want), want_text) in prompts.iter().zip(all_ids).zip(decoded) {
            let want = ids_of(want);
            let got = tok.encode_for_model(prompt);
            if got != want {
                failures.push_str(&describe_mismatch(name, prompt, &want, &got));
            }
            let text = tok.decode(&want);
            if text != want_text.as_str().unwrap() {
                let _ = writeln!(failures, "{name} {prompt:.40?}: decode gave {text:.80?}");
            }
        }
    }
    assert!(failures.is_empty(), "mismatches against Hugging Face:\n{failures}");
}

/// With `tokenizer.json` beside `vocab.json` + `merges.txt`, transformers builds from
/// `tokenizer.json`: the folder must behave exactly like the `json-no-config` variant.
#[test]
fn tokenizer_json_wins_over_vocab_files() {
    let reference = read_json("tokenizer_variant_cases.json");
    let spec = &reference["variants"]["json-no-config"];
    let dir = variant_folder("json-and-vocab-files", spec);
    for file in ["vocab.json", "merges.txt"] {
        fs::copy(fixtures().join("sd1-tiny/tokenizer").join(file), dir.join(file)).unwrap();
    }
    let tok = ClipTokenizer::from_folder(&dir).unwrap();
    let prompts = reference["prompts"].as_array().unwrap();
    for (prompt, want) in prompts.iter().zip(spec["ids"].as_array().unwrap()) {
        assert_eq!(tok.encode_for_model(prompt.as_str().unwrap()), ids_of(want), "{prompt}");
    }
}

#[test]
fn count_tokens_is_the_untruncated_content_length() {
    let cases = read_json("tokenizer_cases.json");
    for name in ["sd1-tiny/tokenizer", "sd2-tiny/tokenizer"] {
        let tok = load(name);
        for case in cases["cases"].as_array().unwrap() {
            let prompt = case["prompt"].as_str().unwrap();
            let model_ids = ids_of(&case["ids"][name]);
            let content = tok.encode(prompt);
            let count = tok.count_tokens(prompt);
            assert_eq!(count, content.len());
            let seen = count.min(tok.max_content_tokens());
            assert_eq!(&model_ids[1..=seen], &content[..seen], "{name} {prompt:.40?}");
            assert_eq!(model_ids[seen + 1], tok.eos_id(), "{name} {prompt:.40?}");
        }
        // The 75-token window's edges: not capped at 75.
        let words = |n: usize| format!("{}end", "word ".repeat(n));
        assert_eq!(tok.count_tokens(&words(74)), 75);
        assert_eq!(tok.count_tokens(&words(75)), 76);
        assert_eq!(tok.count_tokens(""), 0);
        assert_eq!(tok.max_content_tokens(), 75);
    }
}

#[test]
fn special_ids_follow_the_folder() {
    let sd1 = load("sd1-tiny/tokenizer");
    let sd2 = load("sd2-tiny/tokenizer");
    let xl2 = load("sdxl-tiny/tokenizer_2");
    for tok in [&sd1, &sd2, &xl2] {
        assert_eq!((tok.bos_id(), tok.eos_id()), (49406, 49407));
        assert_eq!(tok.max_length(), 77);
        assert_eq!(tok.vocab_size(), 49408);
    }
    assert_eq!(sd1.pad_id(), 49407);
    assert_eq!(sd2.pad_id(), 0);
    assert_eq!(xl2.pad_id(), 0);
    // With pad `!`, every literal `!` is the pad token (diffusers #4153); otherwise `!!` merges.
    assert_eq!(sd2.encode("wow!!"), xl2.encode("wow!!"));
    assert_eq!(sd2.encode("!!"), vec![0, 0]);
    assert_eq!(sd1.encode("!!").len(), 1);
}

/// A long prompt is many words; with no added tokens in it, its ids are its words' ids in
/// order. This checks 10,000+ characters end to end (and is where a slow BPE would show).
#[test]
fn ten_thousand_character_prompt() {
    let tok = load("sd1-tiny/tokenizer");
    let vocabulary = [
        "masterpiece",
        "portrait",
        "of",
        "a",
        "cyberpunk",
        "samurai",
        "🦊",
        "photoréaliste",
        "8k",
        "highly-detailed",
        "naïve",
        "夕焼け",
        "it's",
        "(glowing:1.3)",
        "xyzzyplugh",
    ];
    let words: Vec<&str> = (0..1500)
        .map(|i| vocabulary[(i * 7 + i / 3) % vocabulary.len()])
        .collect();
    let prompt = words.join(" ");
    assert!(prompt.chars().count() >= 10_000);
    let expected: Vec<u32> = words.iter().flat_map(|w| tok.encode(w)).collect();
    assert_eq!(tok.encode(&prompt), expected);
    assert_eq!(tok.count_tokens(&prompt), expected.len());
    let model = tok.encode_for_model(&prompt);
    assert_eq!(model.len(), 77);
    assert_eq!(&model[1..76], &expected[..75]);

    // One 10,000-character word, and arbitrary code points, must not trip anything.
    let one_word = "abcé".repeat(2500);
    assert!(!tok.encode(&one_word).is_empty());
    let noise: String = (0..10_000u32)
        .filter_map(|i| char::from_u32((i * 7919) % 0x30000))
        .collect();
    assert_eq!(tok.encode_for_model(&noise).len(), 77);
}

#[test]
fn decode_round_trips_plain_words() {
    let tok = load("sd1-tiny/tokenizer");
    let prompt = "a watercolor of a lighthouse at dusk, soft light";
    assert_eq!(
        tok.decode(&tok.encode(prompt)),
        "a watercolor of a lighthouse at dusk , soft light"
    );
    let model = tok.encode_for_model("hi");
    assert!(tok.decode(&model).starts_with("<|startoftext|>hi <|endoftext|>"));
}

// ---- loading errors: one line, naming the file at fault ----------------------------------

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("tokenizer-errors")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn load_error(dir: &Path) -> String {
    let err = ClipTokenizer::from_folder(dir).expect_err("loading should fail");
    assert!(matches!(err, lantern::Error::Tokenizer { .. }), "{err:?}");
    let message = err.to_string();
    assert!(!message.contains('\n'), "multi-line error: {message}");
    message
}

fn assert_names(message: &str, file: &Path, needle: &str) {
    let prefix = format!("{}: ", file.display());
    assert!(message.starts_with(&prefix), "{message:?} should start with {prefix:?}");
    assert!(message.contains(needle), "{message:?} should mention {needle:?}");
}

const TINY_VOCAB: &str =
    r#"{"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4, "<|startoftext|>": 5, "<|endoftext|>": 6}"#;

#[test]
fn missing_folder_and_missing_files() {
    let dir = scratch("missing").join("nowhere");
    assert_names(&load_error(&dir), &dir, "not found");

    let file = scratch("a-file").join("vocab.json");
    fs::write(&file, TINY_VOCAB).unwrap();
    assert_names(&load_error(&file), &file, "not a folder");

    let empty = scratch("empty");
    assert_names(&load_error(&empty), &empty, "vocab.json + merges.txt or tokenizer.json");

    let only_vocab = scratch("only-vocab");
    fs::write(only_vocab.join("vocab.json"), TINY_VOCAB).unwrap();
    assert_names(&load_error(&only_vocab), &only_vocab.join("merges.txt"), "missing");
}

#[test]
fn malformed_vocab_is_named() {
    for (name, text) in [
        ("truncated", "{\"a\": 0, "),
        ("not-ids", r#"{"a": "zero"}"#),
        ("empty", "{}"),
    ] {
        let dir = scratch(&format!("vocab-{name}"));
        fs::write(dir.join("vocab.json"), text).unwrap();
        fs::write(dir.join("merges.txt"), "#version: 0.2\n").unwrap();
        assert_names(&load_error(&dir), &dir.join("vocab.json"), "vocabulary");
    }
}

#[test]
fn malformed_merges_are_named_with_the_line() {
    let dir = scratch("merges-bad-line");
    fs::write(dir.join("vocab.json"), TINY_VOCAB).unwrap();
    fs::write(dir.join("merges.txt"), "#version: 0.2\na b</w>\na b c\n").unwrap();
    assert_names(&load_error(&dir), &dir.join("merges.txt"), "line 3");

    let dir = scratch("merges-unknown-token");
    fs::write(dir.join("vocab.json"), TINY_VOCAB).unwrap();
    fs::write(dir.join("merges.txt"), "#version: 0.2\na q\n").unwrap();
    assert_names(
        &load_error(&dir),
        &dir.join("merges.txt"),
        "`q` is not in the vocabulary",
    );
}

#[test]
fn malformed_json_files_are_named() {
    let dir = scratch("bad-tokenizer-json");
    fs::write(dir.join("tokenizer.json"), r#"{"model": {"vocab": []}}"#).unwrap();
    assert_names(&load_error(&dir), &dir.join("tokenizer.json"), "not a tokenizers file");

    let dir = scratch("bad-config");
    fs::write(dir.join("vocab.json"), TINY_VOCAB).unwrap();
    fs::write(dir.join("merges.txt"), "a b</w>\n").unwrap();
    fs::write(dir.join("tokenizer_config.json"), "{\"pad_token\": ").unwrap();
    assert_names(&load_error(&dir), &dir.join("tokenizer_config.json"), "invalid JSON");

    fs::write(dir.join("tokenizer_config.json"), r#"{"pad_token": 7}"#).unwrap();
    assert_names(&load_error(&dir), &dir.join("tokenizer_config.json"), "pad_token");

    fs::write(dir.join("tokenizer_config.json"), r#"{"model_max_length": 1}"#).unwrap();
    assert_names(
        &load_error(&dir),
        &dir.join("tokenizer_config.json"),
        "model_max_length",
    );
}

#[test]
fn tiny_folder_loads_and_encodes() {
    let dir = scratch("tiny-ok");
    fs::write(dir.join("vocab.json"), TINY_VOCAB).unwrap();
    fs::write(dir.join("merges.txt"), "#version: 0.2\na b</w>\n").unwrap();
    fs::write(
        dir.join("special_tokens_map.json"),
        r#"{"pad_token": {"content": "b", "normalized": false}}"#,
    )
    .unwrap();
    fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"model_max_length": 5, "pad_token": "a"}"#,
    )
    .unwrap();
    let tok = ClipTokenizer::from_folder(&dir).unwrap();
    // The map file's pad wins over the config's, and `b` becomes an added token matched as
    // typed (case-sensitive, before lower-casing).
    assert_eq!((tok.bos_id(), tok.eos_id(), tok.pad_id()), (5, 6, 1));
    assert_eq!(tok.encode("ab"), vec![2, 1]);
    assert_eq!(tok.encode("AB"), vec![4]);
    assert_eq!(tok.encode_for_model("aa"), vec![5, 0, 2, 6, 1]);
    assert_eq!(tok.encode_for_model("a a a a"), vec![5, 2, 2, 2, 6]);
}
