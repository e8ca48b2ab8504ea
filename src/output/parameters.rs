//! The AUTOMATIC1111 `parameters` text: writing it exactly as A1111 lays it out, and reading
//! back A1111's and ours.
//!
//! The layout (A1111's `create_infotext`):
//!
//! ```text
//! a red fox in the snow
//! Negative prompt: blurry
//! Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 123, Size: 512x768, Model: sd15, Version: Lantern 0.1.0
//! ```
//!
//! The prompt may span lines; the `Negative prompt:` line is omitted when there is none; the
//! last line is `key: value` pairs joined by `, `. A value is JSON-quoted exactly when it holds
//! a `,`, a `:` or a newline (A1111's `quote`), so the last line is always one line. Other
//! tools (sd-parsers, civitai, A1111's "PNG info" tab) read this format, which is why we match
//! it byte for byte rather than inventing our own.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use crate::error::{Error, Result};
use crate::output::metadata::GenerationParams;
use crate::schedulers::SamplerKind;

/// What we write in the `Version` field.
pub fn version_label() -> String {
    format!("Lantern {}", env!("CARGO_PKG_VERSION"))
}

/// Field names with a typed home in [`GenerationParams`]; extras under these names are not
/// written twice.
const KNOWN_KEYS: [&str; 11] = [
    "Steps",
    "Sampler",
    "Schedule type",
    "CFG scale",
    "Seed",
    "Size",
    "Model hash",
    "Model",
    "Batch size",
    "Batch pos",
    "Version",
];

const NEGATIVE_PREFIX: &str = "Negative prompt:";

/// A1111's `quote`: JSON-quote (non-ASCII kept as is) when the value holds `,` `:` or a newline.
pub fn quote(value: &str) -> Cow<'_, str> {
    if value.contains([',', ':', '\n']) {
        // Serialising a &str to JSON cannot fail.
        Cow::Owned(serde_json::to_string(value).unwrap_or_else(|_| value.to_string()))
    } else {
        Cow::Borrowed(value)
    }
}

/// A1111's `unquote`: a value in double quotes is JSON-decoded; anything else (or invalid JSON)
/// is returned unchanged.
pub fn unquote(value: &str) -> String {
    if value.len() >= 2
        && value.starts_with('"')
        && value.ends_with('"')
        && let Ok(s) = serde_json::from_str::<String>(value)
    {
        return s;
    }
    value.to_string()
}

/// CFG scale as A1111 shows it: `7`, `7.5`, `3.25` (shortest text that reads back exactly).
pub fn format_guidance(g: f64) -> String {
    // Rust's float Display already prints the shortest round-trip form without a trailing `.0`.
    format!("{g}")
}

/// The `parameters` text for one image, in A1111's exact layout.
pub fn format_parameters(p: &GenerationParams) -> String {
    let (mut sampler, mut schedule) = {
        let (s, t) = p.sampler.a1111_names();
        (s.to_string(), t.to_string())
    };
    // A sampler we could not map when reading another tool's PNG is kept in `extra`; write it
    // back in its own place rather than as "Default".
    if p.sampler == SamplerKind::Default
        && let Some(raw) = extra_value(p, "Sampler")
    {
        sampler = raw.to_string();
        schedule = extra_value(p, "Schedule type").unwrap_or("").to_string();
    }

    let mut fields: Vec<(&str, String)> = vec![("Steps", p.steps.to_string()), ("Sampler", sampler)];
    if !schedule.is_empty() {
        fields.push(("Schedule type", schedule));
    }
    fields.push(("CFG scale", format_guidance(p.guidance)));
    fields.push(("Seed", p.seed.to_string()));
    fields.push(("Size", format!("{}x{}", p.width, p.height)));
    if let Some(hash) = p.model_hash.as_deref().filter(|h| !h.is_empty()) {
        fields.push(("Model hash", hash.to_string()));
    }
    if !p.model.is_empty() {
        fields.push(("Model", p.model.clone()));
    }
    if p.batch_size > 1 {
        fields.push(("Batch size", p.batch_size.to_string()));
        fields.push(("Batch pos", p.batch_index.to_string()));
    }
    for (k, v) in &p.extra {
        if !KNOWN_KEYS.contains(&k.as_str()) && is_valid_key(k) {
            fields.push((k.as_str(), v.clone()));
        }
    }
    fields.push(("Version", version_label()));

    let line = fields
        .iter()
        .map(|(k, v)| {
            if k == v {
                k.to_string()
            } else {
                format!("{k}: {}", quote(v))
            }
        })
        .collect::<Vec<_>>()
        .join(", ");

    let mut text = p.prompt.clone();
    if !p.negative_prompt.is_empty() {
        text.push('\n');
        text.push_str(NEGATIVE_PREFIX);
        text.push(' ');
        text.push_str(&p.negative_prompt);
    }
    text.push('\n');
    text.push_str(&line);
    // A1111 strips the whole text, so an empty prompt leaves no blank first line.
    if p.prompt.is_empty() {
        text = text.trim_start_matches('\n').to_string();
    }
    text
}

fn extra_value<'a>(p: &'a GenerationParams, key: &str) -> Option<&'a str> {
    p.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A key A1111's reader can find again: a word character, then word characters, spaces,
/// `-` or `/`; at least two characters.
fn is_valid_key(k: &str) -> bool {
    let mut chars = k.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_alphanumeric() || c == '_');
    first_ok && k.chars().count() >= 2 && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | ' ' | '-' | '/'))
}

/// Everything a `parameters` text said, field by field; `None` where it said nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedParameters {
    pub prompt: String,
    pub negative_prompt: String,
    pub steps: Option<u32>,
    /// The `Sampler` value as written ("DPM++ 2M Karras", "Euler a", …).
    pub sampler_name: Option<String>,
    /// The `Schedule type` value as written ("Karras", "Automatic", …).
    pub schedule_type: Option<String>,
    /// The sampler we recognised from name and schedule type, if any.
    pub sampler: Option<SamplerKind>,
    pub guidance: Option<f64>,
    pub seed: Option<u64>,
    /// `Size: WxH`.
    pub size: Option<(u32, u32)>,
    pub model: Option<String>,
    pub model_hash: Option<String>,
    pub batch_size: Option<u32>,
    /// `Batch pos` (0-based position in the batch).
    pub batch_pos: Option<u32>,
    /// `Version` (A1111's git tag, or "Lantern x.y.z").
    pub version: Option<String>,
    /// Every other field, unquoted, in the order written.
    pub extra: Vec<(String, String)>,
}

impl ParsedParameters {
    /// Complete parameters: what the text said, and Lantern's defaults for what it did not.
    ///
    /// A sampler we cannot map becomes [`SamplerKind::Default`], with the original `Sampler`
    /// (and `Schedule type`) kept in `extra` so that writing the parameters again keeps them.
    pub fn to_params(&self) -> GenerationParams {
        let d = GenerationParams::default();
        let mut extra = Vec::new();
        let sampler = match (self.sampler, &self.sampler_name) {
            (Some(kind), _) => kind,
            (None, Some(raw)) => {
                extra.push(("Sampler".to_string(), raw.clone()));
                if let Some(t) = &self.schedule_type {
                    extra.push(("Schedule type".to_string(), t.clone()));
                }
                SamplerKind::Default
            }
            (None, None) => d.sampler,
        };
        extra.extend(self.extra.iter().cloned());
        let (width, height) = self.size.unwrap_or((d.width, d.height));
        GenerationParams {
            prompt: self.prompt.clone(),
            negative_prompt: self.negative_prompt.clone(),
            steps: self.steps.unwrap_or(d.steps),
            sampler,
            guidance: self.guidance.unwrap_or(d.guidance),
            seed: self.seed.unwrap_or(d.seed),
            width,
            height,
            model: self.model.clone().unwrap_or_default(),
            model_hash: self.model_hash.clone().filter(|h| !h.is_empty()),
            batch_index: self.batch_pos.unwrap_or(d.batch_index),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            extra,
        }
    }
}

/// A1111's field pattern (`re_param` in `infotext_utils.py`), plus unquoted `{…}` values
/// (civitai's `Hashes: {"model": "…"}`) kept whole instead of split at their commas.
static FIELD_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|\{[^{}]*\}|[^,]*)(?:,|$)"#).expect("valid regex")
});

static SIZE_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(\d+)x(\d+)$").expect("valid regex"));

/// The `key: value` pairs of one line, unquoted, in order.
fn scan_fields(line: &str) -> Vec<(String, String)> {
    FIELD_RE
        .captures_iter(line)
        .map(|c| {
            let key = c[1].trim_end().to_string();
            (key, unquote(&c[2]))
        })
        .collect()
}

/// Reads a `parameters` text written by Lantern or AUTOMATIC1111.
///
/// Errors (never panics) on text without a parameter line, and on a known field whose value
/// is not what it must be (`Steps: many`, `Size: big`).
pub fn parse_parameters(text: &str) -> Result<ParsedParameters> {
    let normalized = text.replace("\r\n", "\n");
    let trimmed = normalized.trim_end();
    if trimmed.trim().is_empty() {
        return Err(Error::Parameters("the text is empty".into()));
    }
    let lines: Vec<&str> = trimmed.split('\n').collect();

    // The parameter line is the last one with at least three fields (A1111 requires three).
    // Old A1111 versions appended comment lines after it; those are kept as an extra field.
    let Some(param_index) = lines.iter().rposition(|l| scan_fields(l).len() >= 3) else {
        return Err(Error::Parameters(
            "no line of `key: value` fields (Steps: …, Sampler: …, Seed: …)".into(),
        ));
    };

    let mut out = ParsedParameters::default();
    let mut prompt_lines: Vec<&str> = Vec::new();
    let mut negative_lines: Vec<&str> = Vec::new();
    let mut in_negative = false;
    for line in &lines[..param_index] {
        if !in_negative && let Some(rest) = line.strip_prefix(NEGATIVE_PREFIX) {
            in_negative = true;
            negative_lines.push(rest.strip_prefix(' ').unwrap_or(rest));
            continue;
        }
        if in_negative {
            negative_lines.push(line);
        } else {
            prompt_lines.push(line);
        }
    }
    out.prompt = prompt_lines.join("\n");
    out.negative_prompt = negative_lines.join("\n");

    for (key, value) in scan_fields(lines[param_index]) {
        let v = value.trim();
        match key.as_str() {
            "Steps" => out.steps = Some(parse_number(&key, v)?),
            "Sampler" => out.sampler_name = Some(v.to_string()),
            "Schedule type" => out.schedule_type = Some(v.to_string()),
            "CFG scale" => {
                let g: f64 = parse_number(&key, v)?;
                if !g.is_finite() {
                    return Err(Error::Parameters(format!("`CFG scale: {v}` is not a finite number")));
                }
                out.guidance = Some(g);
            }
            "Seed" => out.seed = Some(parse_number(&key, v)?),
            "Size" => {
                let c = SIZE_RE
                    .captures(v)
                    .ok_or_else(|| Error::Parameters(format!("`Size: {v}` is not WIDTHxHEIGHT")))?;
                out.size = Some((parse_number(&key, &c[1])?, parse_number(&key, &c[2])?));
            }
            "Model hash" => out.model_hash = Some(v.to_string()),
            "Model" => out.model = Some(v.to_string()),
            "Batch size" => out.batch_size = Some(parse_number(&key, v)?),
            "Batch pos" => out.batch_pos = Some(parse_number(&key, v)?),
            "Version" => out.version = Some(v.to_string()),
            _ => match out.extra.iter_mut().find(|(k, _)| *k == key) {
                // Like A1111's dict: a repeated key keeps its first place and its last value.
                Some(slot) => slot.1 = value,
                None => out.extra.push((key, value)),
            },
        }
    }
    let trailing = &lines[param_index + 1..];
    if !trailing.is_empty() {
        out.extra
            .push(("Comments".to_string(), trailing.join("\n").trim().to_string()));
    }

    if let Some(name) = &out.sampler_name {
        out.sampler = SamplerKind::from_a1111(name, out.schedule_type.as_deref());
    }
    Ok(out)
}

fn parse_number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| Error::Parameters(format!("`{key}: {value}` is not a valid number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_follows_a1111() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a, b"), "\"a, b\"");
        assert_eq!(quote("a: b"), "\"a: b\"");
        assert_eq!(quote("line\nbreak"), "\"line\\nbreak\"");
        assert_eq!(quote("狐狸, 雪"), "\"狐狸, 雪\"");
        assert_eq!(quote("say \"hi\", ok"), r#""say \"hi\", ok""#);
        assert_eq!(unquote("\"a, b\""), "a, b");
        assert_eq!(unquote("\"broken"), "\"broken");
        assert_eq!(unquote("\"not \\q json\""), "\"not \\q json\"");
    }

    #[test]
    fn guidance_prints_like_a1111() {
        assert_eq!(format_guidance(7.0), "7");
        assert_eq!(format_guidance(7.5), "7.5");
        assert_eq!(format_guidance(1.25), "1.25");
        assert_eq!(format_guidance(0.1), "0.1");
    }

    #[test]
    fn exact_layout() {
        let p = GenerationParams {
            prompt: "a red fox".into(),
            negative_prompt: "blurry".into(),
            steps: 20,
            sampler: SamplerKind::DpmPp2mKarras,
            guidance: 7.0,
            seed: 123,
            width: 512,
            height: 768,
            model: "sd15".into(),
            model_hash: Some("abc123".into()),
            ..GenerationParams::default()
        };
        assert_eq!(
            format_parameters(&p),
            format!(
                "a red fox\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, \
                 Seed: 123, Size: 512x768, Model hash: abc123, Model: sd15, Version: Lantern {}",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn batch_fields_only_for_batches() {
        let mut p = GenerationParams {
            prompt: "x".into(),
            ..Default::default()
        };
        assert!(!format_parameters(&p).contains("Batch"));
        p.batch_size = 4;
        p.batch_index = 2;
        let text = format_parameters(&p);
        assert!(text.contains("Batch size: 4, Batch pos: 2"), "{text}");
        let back = parse_parameters(&text).unwrap().to_params();
        assert_eq!((back.batch_size, back.batch_index), (4, 2));
    }

    #[test]
    fn empty_prompts_leave_no_blank_line() {
        let p = GenerationParams::default();
        let text = format_parameters(&p);
        assert!(text.starts_with("Steps: 20,"), "{text}");
        assert_eq!(parse_parameters(&text).unwrap().to_params(), p);

        let p = GenerationParams {
            negative_prompt: "ugly".into(),
            ..Default::default()
        };
        let text = format_parameters(&p);
        assert!(text.starts_with("Negative prompt: ugly\nSteps"), "{text}");
        assert_eq!(parse_parameters(&text).unwrap().to_params(), p);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "",
            "   \n  ",
            "just a prompt with no parameters",
            "a: b",
            "Steps: many, Sampler: Euler, Seed: 1",
            "Steps: 20, Sampler: Euler, Seed: -5",
            "Steps: 20, Sampler: Euler, Size: big",
            "Steps: 20, CFG scale: NaN, Seed: 1",
            "Steps: 99999999999999999999, Sampler: Euler, Seed: 1",
            "\u{0}\u{1}\u{2}:::,,,\"\"\"",
        ] {
            assert!(parse_parameters(text).is_err(), "{text:?} should not parse");
        }
        // Arbitrary bytes-as-text never panic.
        let mut seed = 0x1234_5678_u32;
        for _ in 0..2000 {
            let len = (seed % 64) as usize;
            let s: String = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    b"ab :,\n\"\\{}xNegative prompt:Steps0123456789"[(seed >> 24) as usize % 42] as char
                })
                .collect();
            let _ = parse_parameters(&s);
        }
    }
}
