//! How sizes, durations and untrusted text read to people, shared by the window and the
//! command line.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// `1:05` or `1:02:03`: remaining or elapsed time as a clock shows it.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Whether a terminal could act on `c` instead of showing it: C0 controls (U+0000–U+001F,
/// tab and newline included), DEL (U+007F) and the C1 range (U+0080–U+009F, where U+009B is
/// a one-character CSI on some terminals).
pub fn is_terminal_control(c: char) -> bool {
    c.is_control()
}

/// `text` made safe to print on a terminal: every control character (see
/// [`is_terminal_control`]) is shown as a visible escape, `\x1b` for ESC, `\x07` for BEL,
/// `\x0a` for a newline, `\x9b` for U+009B (always `\x` and two lowercase hex digits of
/// the code point). Everything else, backslashes included, is kept as it is, so ordinary
/// text (any language, emoji) reads unchanged. For human-readable output only: prompts, model
/// names, paths and error messages that come from files, which may carry `ESC]0;…` (window
/// title) or `ESC]52;…` (clipboard write) sequences. JSON output stays exact.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_terminal_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_terminal_control(c) {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A number of bytes that prints the way people read sizes ("2.6 GB"), decimal units like the
/// Hub's own file listings so the numbers match what users see there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1000.0 && unit < UNITS.len() - 1 {
            value /= 1000.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} B", self.0)
        } else if value >= 100.0 {
            write!(f, "{value:.0} {}", UNITS[unit])
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_print_like_the_hub() {
        assert_eq!(ByteSize(512).to_string(), "512 B");
        assert_eq!(ByteSize(2_580_000_000).to_string(), "2.6 GB");
        assert_eq!(ByteSize(167_335_342).to_string(), "167 MB");
        assert_eq!(ByteSize(1_500).to_string(), "1.5 kB");
    }

    #[test]
    fn printable_escapes_every_control_character() {
        assert!(matches!(
            printable("一只狐狸 🦊 a\\b"),
            Cow::Borrowed("一只狐狸 🦊 a\\b")
        ));
        assert_eq!(printable("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
        assert_eq!(printable("a\tb\nc\rd\0"), "a\\x09b\\x0ac\\x0dd\\x00");
        assert_eq!(
            printable("\u{7f}\u{80}\u{9b}[2J\u{9f}\u{a0}"),
            "\\x7f\\x80\\x9b[2J\\x9f\u{a0}"
        );
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            let shown = printable(&c.to_string()).into_owned();
            assert!(!shown.chars().any(|c| c.is_control()), "{c:?} → {shown:?}");
        }
    }
}
