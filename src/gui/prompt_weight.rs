//! Ctrl+Up / Ctrl+Down in the prompt boxes: raise or lower the emphasis of the selection, or
//! of the word or weighted group under the cursor, by 0.1 — what AUTOMATIC1111's prompt box
//! does (`javascript/edit-attention.js`), so hands trained there work here.
//!
//! - A selection (or the word under the cursor) that is not yet weighted is wrapped as
//!   `(text:1.1)`; an existing `(text:1.2)` has its number changed; reaching 1.0 removes the
//!   brackets again. Inside `<lora:name:0.8>` the last number moves by 0.05.
//! - The selection afterwards covers the same text, so pressing again keeps adjusting it.
//!
//! Positions are character indices (what egui's text cursor counts), not bytes.

use std::ops::Range;

/// Step for `(text:w)` weights (A1111's "precision for (attention:1.1)").
pub const ATTENTION_STEP: f64 = 0.1;
/// Step for `<lora:name:w>` weights (A1111's "precision for <extra networks:0.9>").
pub const EXTRA_NETWORK_STEP: f64 = 0.05;

/// Characters that end a word when nothing is selected (A1111's default word delimiters).
const WORD_DELIMITERS: &str = ".,\\/!?%^*;:{}=`~() \r\n\t";

/// The edited text and the new selection, or `None` when there is nothing to adjust.
#[derive(Clone, Debug, PartialEq)]
pub struct Edit {
    pub text: String,
    pub selection: Range<usize>,
}

/// Raises (`up`) or lowers the weight of `selection` (or what the cursor is in) in `text`.
pub fn adjust(text: &str, selection: Range<usize>, up: bool) -> Option<Edit> {
    let chars: Vec<char> = text.chars().collect();
    let (start, end) = (
        selection.start.min(selection.end).min(chars.len()),
        selection.end.max(selection.start).min(chars.len()),
    );
    let target = if start == end {
        weighted_group_at(&chars, start, '<', '>')
            .or_else(|| weighted_group_at(&chars, start, '(', ')'))
            .or_else(|| word_at(&chars, start))?
    } else {
        start..end
    };
    let sign = if up { 1.0 } else { -1.0 };
    if target.start > 0 && chars[target.start - 1] == '<' {
        return change_weight(&chars, target, '>', sign * EXTRA_NETWORK_STEP, false);
    }
    if target.start > 0 && chars[target.start - 1] == '(' && weight_after(&chars, target.end, ')').is_some() {
        return change_weight(&chars, target, ')', sign * ATTENTION_STEP, true);
    }
    // Not weighted yet: wrap it as `(text:1.0)` (trailing spaces stay outside), then adjust.
    let mut target = target;
    while target.end > target.start && chars[target.end - 1].is_whitespace() {
        target.end -= 1;
    }
    if target.is_empty() {
        return None;
    }
    let mut wrapped: Vec<char> = chars[..target.start].to_vec();
    wrapped.push('(');
    wrapped.extend_from_slice(&chars[target.clone()]);
    wrapped.extend(":1.0)".chars());
    wrapped.extend_from_slice(&chars[target.end..]);
    change_weight(
        &wrapped,
        target.start + 1..target.end + 1,
        ')',
        sign * ATTENTION_STEP,
        true,
    )
}

/// With the cursor inside `(text:w)` or `<kind:name:w>`: the range before the last colon.
fn weighted_group_at(chars: &[char], cursor: usize, open: char, close: char) -> Option<Range<usize>> {
    // The nearest unmatched `open` before the cursor…
    let mut depth = 0usize;
    let mut start = None;
    for i in (0..cursor).rev() {
        match chars[i] {
            c if c == close => depth += 1,
            c if c == open && depth == 0 => {
                start = Some(i + 1);
                break;
            }
            c if c == open => depth -= 1,
            _ => {}
        }
    }
    let start = start?;
    // …and its matching `close` after it.
    let mut depth = 0usize;
    let mut end = None;
    for (i, &c) in chars.iter().enumerate().skip(cursor) {
        if c == open {
            depth += 1;
        } else if c == close {
            if depth == 0 {
                end = Some(i);
                break;
            }
            depth -= 1;
        }
    }
    let end = end?;
    let colon = chars[start..end].iter().rposition(|&c| c == ':')? + start;
    weight_after(chars, colon, close)?;
    Some(start..colon)
}

/// The word around the cursor, between delimiters.
fn word_at(chars: &[char], cursor: usize) -> Option<Range<usize>> {
    let is_delimiter = |c: char| WORD_DELIMITERS.contains(c);
    let mut start = cursor;
    while start > 0 && !is_delimiter(chars[start - 1]) {
        start -= 1;
    }
    let mut end = cursor;
    while end < chars.len() && !is_delimiter(chars[end]) {
        end += 1;
    }
    (start < end).then_some(start..end)
}

/// The number between the `:` at `colon` and the next `close`, if it is one.
fn weight_after(chars: &[char], colon: usize, close: char) -> Option<(f64, usize)> {
    if chars.get(colon) != Some(&':') {
        return None;
    }
    let len = chars[colon + 1..].iter().position(|&c| c == close)?;
    let number: String = chars[colon + 1..colon + 1 + len].iter().collect();
    let value: f64 = number.trim().parse().ok()?;
    value.is_finite().then_some((value, colon + 1 + len))
}

fn change_weight(chars: &[char], target: Range<usize>, close: char, delta: f64, unwrap_at_one: bool) -> Option<Edit> {
    let (weight, close_at) = weight_after(chars, target.end, close)?;
    // Twelve significant digits hide the binary drift of repeated ±0.1 (1.2000000000000002).
    let weight: f64 = format!("{:.12e}", weight + delta).parse().ok()?;
    let (text, selection) = if unwrap_at_one && weight == 1.0 {
        let mut out: Vec<char> = chars[..target.start - 1].to_vec();
        out.extend_from_slice(&chars[target.clone()]);
        out.extend_from_slice(&chars[close_at + 1..]);
        (out, target.start - 1..target.end - 1)
    } else {
        let mut out: Vec<char> = chars[..=target.end].to_vec();
        out.extend(format_weight(weight).chars());
        out.extend_from_slice(&chars[close_at..]);
        (out, target)
    };
    Some(Edit {
        text: text.into_iter().collect(),
        selection,
    })
}

/// `1.1`, `0.9`, `2.0`, `-0.1`, `0.05`: the shortest form, at least one decimal.
fn format_weight(weight: f64) -> String {
    let s = format!("{weight}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, sel: Range<usize>, up: bool) -> (String, String) {
        let edit = adjust(text, sel, up).expect("an edit");
        let selected: String = edit
            .text
            .chars()
            .skip(edit.selection.start)
            .take(edit.selection.len())
            .collect();
        (edit.text, selected)
    }

    #[test]
    fn a_selection_is_wrapped_then_adjusted() {
        assert_eq!(run("a red fox", 2..5, true), ("a (red:1.1) fox".into(), "red".into()));
        assert_eq!(run("a red fox", 2..5, false), ("a (red:0.9) fox".into(), "red".into()));
        // Trailing spaces of the selection stay outside the brackets.
        assert_eq!(run("a red fox", 2..6, true), ("a (red:1.1) fox".into(), "red".into()));
    }

    #[test]
    fn repeated_presses_keep_adjusting_the_same_text() {
        let mut text = "a red fox".to_string();
        let mut sel = 2..5;
        for _ in 0..3 {
            let e = adjust(&text, sel, true).unwrap();
            (text, sel) = (e.text, e.selection);
        }
        assert_eq!(text, "a (red:1.3) fox");
        for _ in 0..3 {
            let e = adjust(&text, sel, false).unwrap();
            (text, sel) = (e.text, e.selection);
        }
        // Back at 1.0 the brackets go away again.
        assert_eq!(text, "a red fox");
        assert_eq!(sel, 2..5);
    }

    #[test]
    fn the_cursor_picks_the_word_or_the_weighted_group_it_is_in() {
        // In a word: that word (delimited by commas, spaces, brackets…).
        assert_eq!(run("sunset, ocean waves", 10..10, true).0, "sunset, (ocean:1.1) waves");
        // In a weighted group: its weight changes, nesting respected.
        assert_eq!(
            run("(big (red) fox:1.2), sky", 2..2, true).0,
            "(big (red) fox:1.3), sky"
        );
        assert_eq!(
            run("(big (red) fox:1.2), sky", 12..12, false).0,
            "(big (red) fox:1.1), sky"
        );
        // Unicode counts by characters.
        assert_eq!(run("雪 狐狸, 夜", 3..3, true).0, "雪 (狐狸:1.1), 夜");
    }

    #[test]
    fn extra_networks_move_by_the_smaller_step_and_keep_their_brackets() {
        assert_eq!(
            run("<lora:ink_style:0.8> a cat", 3..3, true).0,
            "<lora:ink_style:0.85> a cat"
        );
        assert_eq!(run("<lora:ink:1.05>", 2..2, false).0, "<lora:ink:1.0>");
    }

    #[test]
    fn weights_below_zero_and_drift_are_written_cleanly() {
        assert_eq!(run("(x:0.1)", 1..2, false).0, "(x:0.0)");
        assert_eq!(run("(x:0.0)", 1..2, false).0, "(x:-0.1)");
        assert_eq!(run("(x:1.9)", 1..2, true).0, "(x:2.0)");
    }

    #[test]
    fn groups_trailing_spaces_and_chinese() {
        assert_eq!(
            run("a (red fox:1.3) x", 5..5, true),
            ("a (red fox:1.4) x".into(), "red fox".into())
        );
        assert_eq!(run("a (red:1.1) fox", 3..6, false), ("a red fox".into(), "red".into()));
        assert_eq!(run("red fox ", 4..8, true), ("red (fox:1.1) ".into(), "fox".into()));
        assert_eq!(run("一只狐狸", 2..4, true), ("一只(狐狸:1.1)".into(), "狐狸".into()));
        assert_eq!(run("(red:0.2)", 1..4, false).0, "(red:0.1)");
    }

    #[test]
    fn nothing_to_adjust_gives_none() {
        assert!(adjust("", 0..0, true).is_none());
        assert!(adjust("a, , b", 3..3, true).is_none());
        assert!(adjust("   ", 0..3, true).is_none());
        // A group whose "weight" is not a number is left alone, and so is a bracket-less colon.
        assert_eq!(run("(a:b)", 1..1, true).0, "((a:1.1):b)");
    }

    #[test]
    // A backwards range is the case under test (a selection made right to left).
    #[allow(clippy::reversed_empty_ranges)]
    fn out_of_range_selections_are_clamped() {
        assert_eq!(run("fox", 0..99, true).0, "(fox:1.1)");
        assert_eq!(run("fox", 3..0, true).0, "(fox:1.1)");
    }
}
