//! Logs (`tracing`, filtered by `LANTERN_LOG` or `RUST_LOG`, warnings by default) and the
//! one-line error and panic reports users see.

pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LANTERN_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Log fields quote paths and file text: escaped like all human-readable output,
        // so no colours either (they would be escaped too).
        .with_writer(|| PrintableWriter(std::io::stderr()))
        .with_ansi(false)
        .with_target(false)
        .try_init();
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "internal error: {}{at} (please report this)",
            crate::format::printable(msg.lines().next().unwrap_or(""))
        );
    }));
}

/// A writer that shows control characters visibly, as [`crate::format::printable`] does
/// (newlines kept: they end log lines). Works on bytes: C0 and DEL are single bytes, and a C1
/// character is `0xC2 0x80..=0x9F` in UTF-8.
struct PrintableWriter<W>(W);

impl<W: std::io::Write> std::io::Write for PrintableWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&printable_bytes(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// `bytes` with every control character except `\n` written as `\xHH` (its code point).
fn printable_bytes(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let is_c1 = |i: usize| bytes[i] == 0xc2 && bytes.get(i + 1).is_some_and(|b| (0x80..=0x9f).contains(b));
    let needs = |i: usize| (bytes[i] < 0x20 && bytes[i] != b'\n') || bytes[i] == 0x7f || is_c1(i);
    if !(0..bytes.len()).any(needs) {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut i = 0;
    while i < bytes.len() {
        if is_c1(i) {
            out.extend_from_slice(format!("\\x{:02x}", bytes[i + 1]).as_bytes());
            i += 2;
        } else {
            if needs(i) {
                out.extend_from_slice(format!("\\x{:02x}", bytes[i]).as_bytes());
            } else {
                out.push(bytes[i]);
            }
            i += 1;
        }
    }
    std::borrow::Cow::Owned(out)
}

/// An error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    // The error and its causes, each once: many of our errors already show their cause in
    // their own text (`{path}: {source}`), and anyhow's `{:#}` would print it again.
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(part.trim()) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let db = crate::error::Error::Database {
            path: "h.sqlite3".into(),
            source: rusqlite::Error::InvalidQuery,
        };
        let text = one_line(&anyhow::Error::new(db));
        let cause = rusqlite::Error::InvalidQuery.to_string();
        assert_eq!(text.matches(&cause).count(), 1, "{text}");
        // A context line and a cause it does not contain are both kept.
        let e = anyhow::Error::new(std::io::Error::other("disk on fire")).context("saving the picture");
        assert_eq!(one_line(&e), "saving the picture: disk on fire");
    }

    #[test]
    fn log_lines_show_control_characters_visibly() {
        let text = "path=a\x1b]0;t\x07 \u{9b}2J 狐 \\ ok\n";
        assert_eq!(
            &*printable_bytes(text.as_bytes()),
            "path=a\\x1b]0;t\\x07 \\x9b2J 狐 \\ ok\n".as_bytes()
        );
        assert!(matches!(printable_bytes(b"plain\n"), std::borrow::Cow::Borrowed(_)));
        let mut w = PrintableWriter(Vec::new());
        std::io::Write::write_all(&mut w, b"\x1b[2J\n").unwrap();
        assert_eq!(w.0, b"\\x1b[2J\n");
    }
}
