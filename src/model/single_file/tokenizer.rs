//! The CLIP tokenizer a single-file checkpoint needs, with no tokenizer folder: CLIP's BPE
//! merges are shipped in `assets/clip/merges.txt` (512 KB, embedded in the binary) and the
//! vocabulary is derived from them exactly as CLIP builds it (the 256 byte symbols, the same
//! with `</w>`, one entry per merge, then the two special tokens), which saves the 940 KB
//! `vocab.json`. The special-token files are the hub's own (`pad-eos`: SD 1.5 and SDXL's first
//! tokenizer; `pad-bang`: SD 2.x and SDXL's second, whose pad token is `!`).
//!
//! The files are written to a fresh private folder and read by the ordinary folder loader,
//! so a single file tokenizes exactly as the same model's diffusers folder does.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::text::ClipTokenizer;

const MERGES: &str = include_str!("../../../assets/clip/merges.txt");
const PAD_EOS: [(&str, &str); 2] = [
    (
        "tokenizer_config.json",
        include_str!("../../../assets/clip/pad-eos/tokenizer_config.json"),
    ),
    (
        "special_tokens_map.json",
        include_str!("../../../assets/clip/pad-eos/special_tokens_map.json"),
    ),
];
const PAD_BANG: [(&str, &str); 2] = [
    (
        "tokenizer_config.json",
        include_str!("../../../assets/clip/pad-bang/tokenizer_config.json"),
    ),
    (
        "special_tokens_map.json",
        include_str!("../../../assets/clip/pad-bang/special_tokens_map.json"),
    ),
];

/// GPT-2's byte → printable-character table, in CLIP's order.
fn byte_symbols() -> Vec<char> {
    let mut bytes: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars = bytes.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bytes.contains(&b) {
            bytes.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    chars.into_iter().filter_map(char::from_u32).collect()
}

/// CLIP's `vocab.json`, built from the merges.
pub fn vocab_json() -> String {
    let symbols = byte_symbols();
    let mut vocab: Vec<String> = symbols.iter().map(|c| c.to_string()).collect();
    vocab.extend(symbols.iter().map(|c| format!("{c}</w>")));
    // CLIP uses the first 49152 − 256 − 2 merges.
    let n_merges = 49152 - 256 - 2;
    vocab.extend(
        MERGES
            .lines()
            .skip(1)
            .take(n_merges)
            .map(|l| l.split_whitespace().collect::<String>()),
    );
    vocab.push("<|startoftext|>".into());
    vocab.push("<|endoftext|>".into());
    let map: serde_json::Map<String, serde_json::Value> = vocab
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, serde_json::Value::from(i)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// A folder removed when dropped.
struct TempFolder(PathBuf);

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fresh_folder() -> Result<TempFolder> {
    let base = std::env::temp_dir();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for attempt in 0..100u32 {
        let dir = base.join(format!("lantern-clip-{}-{stamp}-{attempt}", std::process::id()));
        // create_dir fails on an existing entry, so nobody else's folder or link is used.
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(TempFolder(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
    Err(Error::invalid("could not create a temporary folder for the tokenizer"))
}

/// The tokenizer named in the family settings (`pad-eos` or `pad-bang`).
pub fn load(kind: &str, checkpoint: &Path) -> Result<ClipTokenizer> {
    let specials = match kind {
        "pad-eos" => PAD_EOS,
        "pad-bang" => PAD_BANG,
        other => {
            return Err(Error::model(
                checkpoint,
                format!("unknown tokenizer `{other}` in the family settings"),
            ));
        }
    };
    let dir = fresh_folder()?;
    let write = |name: &str, text: &str| {
        let p = dir.0.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
    };
    write("vocab.json", &vocab_json())?;
    write("merges.txt", MERGES)?;
    for (name, text) in specials {
        write(name, text)?;
    }
    ClipTokenizer::from_folder(&dir.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_built_from_the_merges_is_clips() {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sd1-tiny/tokenizer/vocab.json"
        );
        let theirs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
        let ours: serde_json::Value = serde_json::from_str(&vocab_json()).unwrap();
        assert_eq!(ours.as_object().unwrap().len(), 49408);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn embedded_tokenizers_match_the_fixture_folders() {
        let fx = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let here = Path::new("x.safetensors");
        for (kind, folder) in [("pad-eos", "sd1-tiny/tokenizer"), ("pad-bang", "sdxl-tiny/tokenizer_2")] {
            let ours = load(kind, here).unwrap();
            let theirs = ClipTokenizer::from_folder(&Path::new(fx).join(folder)).unwrap();
            for prompt in ["a photo of an astronaut!", "(masterpiece:1.2), best quality!!", ""] {
                assert_eq!(
                    ours.encode_for_model(prompt),
                    theirs.encode_for_model(prompt),
                    "{kind}: {prompt}"
                );
            }
        }
    }
}
