//! File names for generated images: `20261128-142501-1234567-a-red-fox.png`.
//!
//! Local time first so a folder sorts by when things were made; the seed so a designer can
//! find "that one with seed 1234567"; then a short slug of the prompt. The slug is plain
//! ASCII so the name is safe on Windows, macOS and Linux, in zip files and in shells.
//!
//! Local time comes from `jiff`, which reads the OS time-zone database and stays correct in a
//! multi-threaded process (the GUI's worker threads), where the `time` crate refuses to give
//! a local offset on Unix.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

/// Longest slug, in characters (the whole name stays well under every OS's limit).
pub const MAX_SLUG_LEN: usize = 40;

/// The longest name [`file_name`] gives, in bytes; [`candidates`] adds at most 5 (`-9999`).
/// Far under the 255-byte limit of a path component.
pub const MAX_FILE_NAME_LEN: usize = 15 + 1 + 20 + 1 + MAX_SLUG_LEN + 4;
const _: () = assert!(MAX_FILE_NAME_LEN + 5 <= crate::output::atomic::MAX_FILE_NAME_BYTES);

/// Used when a prompt gives no ASCII letters at all (Chinese, emoji, empty).
pub const FALLBACK_SLUG: &str = "image";

/// Names Windows refuses as a file stem, whatever the extension.
const WINDOWS_RESERVED: [&str; 22] = [
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9", "lpt1", "lpt2",
    "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Prompt syntax that says nothing about the picture: `<lora:name:0.8>` and `:1.2` weights.
static NOISE_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<[^>]*>|:\s*-?[0-9]*\.?[0-9]+").expect("valid regex"));

/// A short lowercase ASCII slug of a prompt: `"A red fox, (snow:1.2)"` → `a-red-fox-snow`.
///
/// Accented Latin letters lose their accents (`café` → `cafe`); anything else that is not an
/// ASCII letter or digit separates words. Cut at a word boundary to at most
/// [`MAX_SLUG_LEN`] characters. Never empty, never a reserved Windows name, never ends in
/// a dot or dash.
pub fn slug(prompt: &str) -> String {
    let cleaned = NOISE_RE.replace_all(prompt, " ");
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in cleaned.nfkd() {
        if c.is_ascii_alphanumeric() {
            current.push(c.to_ascii_lowercase());
        } else if is_combining_mark(c) {
            // Dropped: the accent of a decomposed letter.
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }

    let mut out = String::new();
    for word in words {
        let extra = if out.is_empty() { word.len() } else { word.len() + 1 };
        if out.len() + extra > MAX_SLUG_LEN {
            if out.is_empty() {
                // One very long word: cut it.
                out.push_str(&word[..MAX_SLUG_LEN]);
            }
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word);
    }
    if out.is_empty() {
        return FALLBACK_SLUG.to_string();
    }
    if WINDOWS_RESERVED.contains(&out.as_str()) {
        out = format!("{FALLBACK_SLUG}-{out}");
    }
    out
}

fn is_combining_mark(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// The file name (without folder) for an image made at `local_time` with `seed` and `prompt`.
///
/// Plain ASCII and at most [`MAX_FILE_NAME_LEN`] bytes whatever the prompt (any length, any
/// script): 15 for the time, up to 20 for the seed, up to [`MAX_SLUG_LEN`] for the slug.
pub fn file_name(local_time: &jiff::civil::DateTime, seed: u64, prompt: &str) -> String {
    format!("{}-{}-{}.png", local_time.strftime("%Y%m%d-%H%M%S"), seed, slug(prompt))
}

/// The current local wall-clock time (UTC when the zone cannot be determined).
pub fn local_now() -> jiff::civil::DateTime {
    jiff::ZonedDateTime::now().datetime()
}

/// `dir/name`, or `dir/stem-1.ext`, `dir/stem-2.ext`, … : the first that does not exist yet.
///
/// Only a hint: another writer may take the name before we use it, so [`crate::output::atomic`]
/// still refuses to replace an existing file.
pub fn unused_path(dir: &Path, name: &str) -> PathBuf {
    candidates(dir, name)
        .find(|p| !p.exists())
        .unwrap_or_else(|| dir.join(name))
}

/// `dir/name`, then `dir/stem-1.ext`, `dir/stem-2.ext`, … (a bounded list).
pub fn candidates<'a>(dir: &'a Path, name: &'a str) -> impl Iterator<Item = PathBuf> + 'a {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    (0..10_000u32).map(move |n| {
        if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}{ext}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("A red fox, in the snow!"), "a-red-fox-in-the-snow");
        assert_eq!(
            slug("(masterpiece:1.2), <lora:detail:0.8> café crème"),
            "masterpiece-cafe-creme"
        );
        assert_eq!(slug("一只红色的狐狸"), "image");
        assert_eq!(slug("🦊🦊"), "image");
        assert_eq!(slug(""), "image");
        assert_eq!(slug("狐狸 fox 雪"), "fox");
        assert_eq!(slug("CON"), "image-con");
        assert_eq!(slug("nul."), "image-nul");
        assert_eq!(slug("..."), "image");
        let long = slug("an extraordinarily detailed photograph of a lighthouse at dusk with waves");
        assert!(long.len() <= MAX_SLUG_LEN, "{long}");
        assert_eq!(long, "an-extraordinarily-detailed-photograph");
        assert_eq!(slug(&"x".repeat(100)).len(), MAX_SLUG_LEN);
        for s in [long.as_str(), "a-red-fox"] {
            assert!(!s.ends_with('.') && !s.ends_with('-') && s.is_ascii());
        }
    }

    #[test]
    fn names_stay_short_with_any_prompt() {
        let t = jiff::civil::date(2026, 11, 28).at(14, 25, 1, 0);
        let chinese: String = "一只红色的狐狸在雪地里".chars().cycle().take(2000).collect();
        let prompts = [
            chinese.clone(),
            "🦊✨".repeat(1000),
            format!("{chinese} fox"),
            "x".repeat(5000),
            "é".repeat(3000),
            "con ".repeat(500),
            "a ".repeat(3000),
        ];
        for prompt in &prompts {
            let name = file_name(&t, u64::MAX, prompt);
            assert!(name.is_ascii() && name.len() <= MAX_FILE_NAME_LEN, "{name}");
            let dir = Path::new("d");
            let last = candidates(dir, &name).last().unwrap();
            let last = last.file_name().unwrap().len();
            assert!(last <= MAX_FILE_NAME_LEN + 5, "{last}");
        }
        assert_eq!(file_name(&t, 1, &chinese), "20261128-142501-1-image.png");
    }

    #[test]
    fn names_and_collisions() {
        let t = jiff::civil::date(2026, 11, 28).at(14, 25, 1, 0);
        assert_eq!(
            file_name(&t, 1234567, "a red fox"),
            "20261128-142501-1234567-a-red-fox.png"
        );
        let dir = tempfile::tempdir().unwrap();
        let name = "20261128-142501-1-x.png";
        assert_eq!(unused_path(dir.path(), name), dir.path().join(name));
        std::fs::write(dir.path().join(name), b"").unwrap();
        assert_eq!(
            unused_path(dir.path(), name),
            dir.path().join("20261128-142501-1-x-1.png")
        );
        std::fs::write(dir.path().join("20261128-142501-1-x-1.png"), b"").unwrap();
        assert_eq!(
            unused_path(dir.path(), name),
            dir.path().join("20261128-142501-1-x-2.png")
        );
    }
}
