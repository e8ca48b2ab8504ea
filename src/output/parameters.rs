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
use crate::recipe::{HiresFix, HiresUpscaler, NoiseKind, PromptSyntax, Recipe, ResizeMode};
use crate::schedulers::SamplerKind;

/// What we write in the `Version` field.
pub fn version_label() -> String {
    format!("Lantern {}", env!("CARGO_PKG_VERSION"))
}

const NEGATIVE_PREFIX: &str = "Negative prompt:";

/// One `key: value` field of the parameter line with a typed home in the [`Recipe`], in the
/// order A1111 writes them. A new recipe parameter that A1111 (or Lantern) records gets a row
/// here, and nothing else in this file changes.
struct Field {
    key: &'static str,
    /// The value to write; `None` leaves the field out.
    write: fn(&Recipe) -> Option<String>,
    /// Reads the written value into the parsed result.
    read: fn(&mut ParsedParameters, &str) -> Result<()>,
}

const FIELDS: &[Field] = &[
    Field {
        key: "Steps",
        write: |r| Some(r.steps.to_string()),
        read: |p, v| {
            p.recipe.steps = parse_number("Steps", v)?;
            Ok(())
        },
    },
    Field {
        key: "Sampler",
        write: |r| Some(sampler_names(r).0),
        read: |p, v| {
            p.sampler_name = Some(v.to_string());
            Ok(())
        },
    },
    Field {
        key: "Schedule type",
        write: |r| Some(sampler_names(r).1).filter(|t| !t.is_empty()),
        read: |p, v| {
            p.schedule_type = Some(v.to_string());
            Ok(())
        },
    },
    Field {
        key: "CFG scale",
        write: |r| Some(format_guidance(r.guidance)),
        read: |p, v| {
            let g: f64 = parse_number("CFG scale", v)?;
            if !g.is_finite() {
                return Err(Error::Parameters(format!("`CFG scale: {v}` is not a finite number")));
            }
            p.recipe.guidance = g;
            Ok(())
        },
    },
    Field {
        key: "Seed",
        write: |r| Some(r.seed.to_string()),
        read: |p, v| {
            p.recipe.seed = parse_number("Seed", v)?;
            Ok(())
        },
    },
    Field {
        key: "Size",
        write: |r| Some(format!("{}x{}", r.width, r.height)),
        read: |p, v| {
            let c = SIZE_RE
                .captures(v)
                .ok_or_else(|| Error::Parameters(format!("`Size: {v}` is not WIDTHxHEIGHT")))?;
            p.recipe.width = parse_number("Size", &c[1])?;
            p.recipe.height = parse_number("Size", &c[2])?;
            Ok(())
        },
    },
    Field {
        key: "Model hash",
        write: |r| r.model_hash.clone().filter(|h| !h.is_empty()),
        read: |p, v| {
            p.recipe.model_hash = Some(v.to_string()).filter(|h| !h.is_empty());
            Ok(())
        },
    },
    Field {
        key: "Model",
        write: |r| Some(r.model.clone()).filter(|m| !m.is_empty()),
        read: |p, v| {
            p.recipe.model = v.to_string();
            Ok(())
        },
    },
    Field {
        key: "VAE hash",
        write: |r| r.vae_hash.clone().filter(|h| !h.is_empty()),
        read: |p, v| {
            p.recipe.vae_hash = Some(v.to_string()).filter(|h| !h.is_empty());
            Ok(())
        },
    },
    Field {
        key: "VAE",
        write: |r| r.vae.clone().filter(|v| !v.is_empty()),
        read: |p, v| {
            p.recipe.vae = Some(v.to_string()).filter(|v| !v.is_empty());
            Ok(())
        },
    },
    Field {
        // A1111's own field for its "VAE type for decode" setting: `TAESD`, or absent for the
        // full VAE (A1111 writes nothing then; we read its `Full` too).
        key: "VAE Decoder",
        write: |r| r.draft_decode.then(|| "TAESD".to_string()),
        read: |p, v| {
            p.recipe.draft_decode = match v.trim() {
                "TAESD" => true,
                "Full" => false,
                _ => return Err(Error::Parameters(format!("`VAE Decoder: {v}` is not TAESD or Full"))),
            };
            Ok(())
        },
    },
    Field {
        key: "Denoising strength",
        // A1111 writes it for img2img and for hires fix.
        write: |r| (r.is_img2img() || r.hires.is_some()).then(|| format_guidance(r.strength)),
        read: |p, v| {
            let s: f64 = parse_number("Denoising strength", v)?;
            if !s.is_finite() {
                return Err(Error::Parameters(format!(
                    "`Denoising strength: {v}` is not a finite number"
                )));
            }
            p.recipe.strength = s;
            Ok(())
        },
    },
    Field {
        key: "Mask blur",
        write: |r| r.mask.is_some().then(|| r.mask_blur.to_string()),
        read: |p, v| {
            p.recipe.mask_blur = parse_number("Mask blur", v)?;
            Ok(())
        },
    },
    Field {
        key: "Hires upscale",
        write: |r| r.hires.map(|h| format_guidance(h.scale)),
        read: |p, v| {
            let scale: f64 = parse_number("Hires upscale", v)?;
            p.recipe.hires.get_or_insert_with(HiresFix::default).scale = scale;
            Ok(())
        },
    },
    Field {
        key: "Hires steps",
        // A1111 writes it when the second pass has its own step count.
        write: |r| r.hires.filter(|h| h.steps != 0).map(|h| h.steps.to_string()),
        read: |p, v| {
            p.recipe.hires.get_or_insert_with(HiresFix::default).steps = parse_number("Hires steps", v)?;
            Ok(())
        },
    },
    Field {
        key: "Hires upscaler",
        write: |r| r.hires.map(|h| h.upscaler.a1111_name().to_string()),
        read: |p, v| {
            // A1111's other upscalers (ESRGAN and the like) scale the picture: Lanczos is the
            // one of ours that does too.
            let upscaler = HiresUpscaler::parse(v).unwrap_or(HiresUpscaler::Lanczos);
            p.recipe.hires.get_or_insert_with(HiresFix::default).upscaler = upscaler;
            Ok(())
        },
    },
    Field {
        key: "Lora hashes",
        write: |r| (!r.lora_hashes.is_empty()).then(|| format_lora_hashes(&r.lora_hashes)),
        read: |p, v| {
            p.recipe.lora_hashes = parse_lora_hashes(v);
            Ok(())
        },
    },
    Field {
        key: "TI hashes",
        write: |r| (!r.ti_hashes.is_empty()).then(|| format_lora_hashes(&r.ti_hashes)),
        read: |p, v| {
            p.recipe.ti_hashes = parse_lora_hashes(v);
            Ok(())
        },
    },
    Field {
        key: "Batch size",
        write: |r| (r.batch_size > 1).then(|| r.batch_size.to_string()),
        read: |p, v| {
            p.recipe.batch_size = parse_number("Batch size", v)?;
            Ok(())
        },
    },
    Field {
        key: "Batch pos",
        write: |r| (r.batch_size > 1).then(|| r.batch_index.to_string()),
        read: |p, v| {
            p.recipe.batch_index = parse_number("Batch pos", v)?;
            Ok(())
        },
    },
    // A1111 writes `RNG: CPU` or `RNG: NV` and leaves the field out for its default, the GPU's
    // own generator. We always write it (`NV` for `gpu`: A1111's CPU-side computation of the
    // same numbers, so A1111 reproduces the picture on any hardware; `Lantern` for our own),
    // so that a Lantern PNG without it is known to predate the choice: see `parse_parameters`.
    Field {
        key: "RNG",
        write: |r| Some(r.rng.a1111_name().to_string()),
        read: |p, v| {
            p.recipe.rng = NoiseKind::from_a1111(v).ok_or_else(|| {
                Error::Parameters(format!(
                    "`RNG: {v}` is not a known noise source (CPU, NV, GPU, Lantern)"
                ))
            })?;
            Ok(())
        },
    },
    Field {
        key: "Clip skip",
        // A1111 writes it only when it is not 1.
        write: |r| (r.clip_skip != 1).then(|| r.clip_skip.to_string()),
        read: |p, v| {
            p.recipe.clip_skip = parse_number("Clip skip", v)?;
            Ok(())
        },
    },
    Field {
        // Lantern's own field, always written (other tools keep unknown fields). Absent, the
        // text means A1111 syntax — unless Lantern wrote it before the field existed, when
        // every prompt was plain (see `parse_parameters`).
        key: PROMPT_SYNTAX_KEY,
        write: |r| Some(r.prompt_syntax.name().to_string()),
        read: |p, v| {
            p.recipe.prompt_syntax = v
                .parse::<PromptSyntax>()
                .map_err(|_| Error::Parameters(format!("`{PROMPT_SYNTAX_KEY}: {v}` is not a1111 or plain")))?;
            Ok(())
        },
    },
    // Lantern's own img2img fields: the start pictures by the hash they are kept under in the
    // data folder, and the choices A1111 does not record.
    Field {
        key: "Init image hash",
        write: |r| r.init_image.clone(),
        read: |p, v| {
            p.recipe.init_image = Some(v.trim().to_string()).filter(|h| !h.is_empty());
            Ok(())
        },
    },
    Field {
        key: "Mask hash",
        write: |r| r.mask.clone(),
        read: |p, v| {
            p.recipe.mask = Some(v.trim().to_string()).filter(|h| !h.is_empty());
            Ok(())
        },
    },
    Field {
        key: "Resize mode",
        write: |r| (r.is_img2img() && r.resize_mode != ResizeMode::default()).then(|| r.resize_mode.name().to_string()),
        read: |p, v| {
            p.recipe.resize_mode = ResizeMode::parse(v)
                .ok_or_else(|| Error::Parameters(format!("`Resize mode: {v}` is not stretch, crop or fill")))?;
            Ok(())
        },
    },
    Field {
        // Absent means kept, as A1111 always pastes the original back.
        key: "Keep unmasked",
        write: |r| (r.mask.is_some() && !r.keep_unmasked).then(|| "false".to_string()),
        read: |p, v| {
            p.recipe.keep_unmasked = match v.trim() {
                "true" => true,
                "false" => false,
                _ => return Err(Error::Parameters(format!("`Keep unmasked: {v}` is not true or false"))),
            };
            Ok(())
        },
    },
];

const PROMPT_SYNTAX_KEY: &str = "Prompt syntax";

/// Written last, after the fields we keep from other tools; not part of the recipe.
const VERSION_KEY: &str = "Version";

/// (sampler, schedule type) to write. A sampler we could not map when reading another tool's
/// PNG is kept in `extra`; it is written back in its own place rather than as "Default".
fn sampler_names(r: &Recipe) -> (String, String) {
    if r.sampler == SamplerKind::Default
        && let Some(raw) = r.extra_value("Sampler")
    {
        let schedule = r.extra_value("Schedule type").unwrap_or("");
        return (raw.to_string(), schedule.to_string());
    }
    let (s, t) = r.sampler.a1111_names();
    (s.to_string(), t.to_string())
}

fn is_typed_key(key: &str) -> bool {
    key == VERSION_KEY || FIELDS.iter().any(|f| f.key == key)
}

/// A1111's `Lora hashes` (and `TI hashes`) value, `name: hash, name: hash` (names lose `:`
/// and `,` as there).
fn format_lora_hashes(hashes: &[(String, String)]) -> String {
    hashes
        .iter()
        .map(|(name, hash)| format!("{}: {hash}", name.replace([':', ','], "")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_lora_hashes(value: &str) -> Vec<(String, String)> {
    value
        .split(',')
        .filter_map(|entry| entry.split_once(':'))
        .map(|(name, hash)| (name.trim().to_string(), hash.trim().to_string()))
        .filter(|(name, hash)| !name.is_empty() && !hash.is_empty())
        .collect()
}

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
pub fn format_parameters(r: &Recipe) -> String {
    let mut fields: Vec<(&str, String)> = FIELDS.iter().filter_map(|f| (f.write)(r).map(|v| (f.key, v))).collect();
    for (k, v) in &r.extra {
        if !is_typed_key(k) && is_valid_key(k) {
            fields.push((k.as_str(), v.clone()));
        }
    }
    fields.push((VERSION_KEY, version_label()));

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

    let mut text = r.prompt.clone();
    if !r.negative_prompt.is_empty() {
        text.push('\n');
        text.push_str(NEGATIVE_PREFIX);
        text.push(' ');
        text.push_str(&r.negative_prompt);
    }
    text.push('\n');
    text.push_str(&line);
    // A1111 strips the whole text, so an empty prompt leaves no blank first line.
    if r.prompt.is_empty() {
        text = text.trim_start_matches('\n').to_string();
    }
    text
}

/// A key A1111's reader can find again: a word character, then word characters, spaces,
/// `-` or `/`; at least two characters.
fn is_valid_key(k: &str) -> bool {
    let mut chars = k.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_alphanumeric() || c == '_');
    first_ok && k.chars().count() >= 2 && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | ' ' | '-' | '/'))
}

/// Everything a `parameters` text said.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedParameters {
    /// What the text said, and the recipe's defaults for what it did not. Its `sampler` is the
    /// recognised one ([`SamplerKind::Default`] when unknown); its `extra` holds every field
    /// without a typed home, unquoted, in the order written.
    pub recipe: Recipe,
    /// The `Sampler` value as written ("DPM++ 2M Karras", "Euler a", …).
    pub sampler_name: Option<String>,
    /// The `Schedule type` value as written ("Karras", "Automatic", …).
    pub schedule_type: Option<String>,
    /// The sampler we recognised from name and schedule type, if any.
    pub sampler: Option<SamplerKind>,
    /// `Version` (A1111's git tag, or "Lantern x.y.z").
    pub version: Option<String>,
    /// The typed fields the text set, in the order written.
    pub said: Vec<&'static str>,
}

impl ParsedParameters {
    /// Whether the text set this field (`"Steps"`, `"CFG scale"`, …).
    pub fn said(&self, key: &str) -> bool {
        self.said.contains(&key)
    }

    /// The complete recipe. A sampler we cannot map becomes [`SamplerKind::Default`], with the
    /// original `Sampler` (and `Schedule type`) kept first in `extra` so that writing the
    /// recipe again keeps them.
    pub fn to_recipe(&self) -> Recipe {
        let mut recipe = self.recipe.clone();
        if let (None, Some(raw)) = (self.sampler, &self.sampler_name) {
            let mut kept = vec![("Sampler".to_string(), raw.clone())];
            if let Some(t) = &self.schedule_type {
                kept.push(("Schedule type".to_string(), t.clone()));
            }
            kept.append(&mut recipe.extra);
            recipe.extra = kept;
        }
        recipe
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
    out.recipe.prompt = prompt_lines.join("\n");
    out.recipe.negative_prompt = negative_lines.join("\n");

    for (key, value) in scan_fields(lines[param_index]) {
        let v = value.trim();
        if key == VERSION_KEY {
            out.version = Some(v.to_string());
        } else if let Some(field) = FIELDS.iter().find(|f| f.key == key) {
            (field.read)(&mut out, v)?;
            out.said.push(field.key);
        } else {
            match out.recipe.extra.iter_mut().find(|(k, _)| *k == key) {
                // Like A1111's dict: a repeated key keeps its first place and its last value.
                Some(slot) => slot.1 = value,
                None => out.recipe.extra.push((key, value)),
            }
        }
    }
    let trailing = &lines[param_index + 1..];
    if !trailing.is_empty() {
        out.recipe
            .extra
            .push(("Comments".to_string(), trailing.join("\n").trim().to_string()));
    }

    if !out.said(PROMPT_SYNTAX_KEY) {
        out.recipe.prompt_syntax = if out.version.as_deref().is_some_and(is_lantern_version) {
            PromptSyntax::legacy()
        } else {
            PromptSyntax::A1111
        };
    }
    if let Some(name) = &out.sampler_name {
        out.sampler = SamplerKind::from_a1111(name, out.schedule_type.as_deref());
    }
    // No `RNG` field means A1111's default, the GPU generator — except in a PNG Lantern wrote
    // before it recorded the source: those were all made with Lantern's own generator.
    if !out.said("RNG") && out.version.as_deref().is_some_and(is_lantern_version) {
        out.recipe.rng = NoiseKind::Lantern;
    }
    out.recipe.sampler = out.sampler.unwrap_or(SamplerKind::Default);
    Ok(out)
}

/// A `Version` Lantern wrote (`Lantern 0.1.0`).
fn is_lantern_version(version: &str) -> bool {
    version
        .get(..8)
        .is_some_and(|head| head.eq_ignore_ascii_case("lantern "))
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
        let p = Recipe {
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
            ..Recipe::default()
        };
        assert_eq!(
            format_parameters(&p),
            format!(
                "a red fox\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, \
                 Seed: 123, Size: 512x768, Model hash: abc123, Model: sd15, RNG: NV, Prompt syntax: a1111, Version: Lantern {}",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn batch_fields_only_for_batches() {
        let mut p = Recipe {
            prompt: "x".into(),
            ..Default::default()
        };
        assert!(!format_parameters(&p).contains("Batch"));
        p.batch_size = 4;
        p.batch_index = 2;
        let text = format_parameters(&p);
        assert!(text.contains("Batch size: 4, Batch pos: 2"), "{text}");
        let back = parse_parameters(&text).unwrap().to_recipe();
        assert_eq!((back.batch_size, back.batch_index), (4, 2));
    }

    #[test]
    fn clip_skip_and_prompt_syntax() {
        let p = Recipe {
            prompt: "(fox:1.2)".into(),
            clip_skip: 2,
            prompt_syntax: PromptSyntax::Plain,
            ..Default::default()
        };
        let text = format_parameters(&p);
        assert!(text.contains("Clip skip: 2, Prompt syntax: plain, Version"), "{text}");
        assert_eq!(parse_parameters(&text).unwrap().to_recipe(), p);
        assert!(!format_parameters(&Recipe::default()).contains("Clip skip"));
        // A1111's text has no syntax field: its prompts are A1111's.
        let a1111 = "fox\nSteps: 20, Sampler: Euler, Seed: 1, Clip skip: 2, Version: v1.10.1";
        let r = parse_parameters(a1111).unwrap().to_recipe();
        assert_eq!((r.prompt_syntax, r.clip_skip), (PromptSyntax::A1111, 2));
        let none = "fox\nSteps: 20, Sampler: Euler, Seed: 1";
        assert_eq!(
            parse_parameters(none).unwrap().recipe.prompt_syntax,
            PromptSyntax::A1111
        );
        // Lantern before the field: plain text.
        let old = "(fox)\nSteps: 20, Sampler: Euler, Seed: 1, Version: Lantern 0.1.0";
        assert_eq!(parse_parameters(old).unwrap().recipe.prompt_syntax, PromptSyntax::Plain);
        assert!(parse_parameters("x\nSteps: 20, Seed: 1, Prompt syntax: rst").is_err());
    }

    #[test]
    fn draft_decode_is_a1111s_vae_decoder_field() {
        let p = Recipe {
            prompt: "fox".into(),
            draft_decode: true,
            ..Default::default()
        };
        let text = format_parameters(&p);
        assert!(text.contains(", VAE Decoder: TAESD, "), "{text}");
        assert_eq!(parse_parameters(&text).unwrap().to_recipe(), p);
        assert!(!format_parameters(&Recipe::default()).contains("VAE Decoder"));
        // A1111's own texts: `TAESD` when its decode setting was TAESD; `Full` read too.
        let a1111 = "fox\nSteps: 20, Sampler: Euler, Seed: 1, VAE Decoder: TAESD, Version: v1.10.1";
        assert!(parse_parameters(a1111).unwrap().recipe.draft_decode);
        let full = "fox\nSteps: 20, Sampler: Euler, Seed: 1, VAE Decoder: Full";
        assert!(!parse_parameters(full).unwrap().recipe.draft_decode);
        let err = parse_parameters("fox\nSteps: 20, Seed: 1, VAE Decoder: Tiny").unwrap_err();
        assert!(err.to_string().contains("TAESD or Full"), "{err}");
    }

    #[test]
    fn empty_prompts_leave_no_blank_line() {
        let p = Recipe::default();
        let text = format_parameters(&p);
        assert!(text.starts_with("Steps: 20,"), "{text}");
        assert_eq!(parse_parameters(&text).unwrap().to_recipe(), p);

        let p = Recipe {
            negative_prompt: "ugly".into(),
            ..Default::default()
        };
        let text = format_parameters(&p);
        assert!(text.starts_with("Negative prompt: ugly\nSteps"), "{text}");
        assert_eq!(parse_parameters(&text).unwrap().to_recipe(), p);
    }

    #[test]
    fn noise_source_field() {
        let line = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512";
        let read = |text: &str| parse_parameters(text).unwrap().to_recipe().rng;
        // A1111: absent means its GPU generator; CPU and NV name theirs.
        assert_eq!(read(&format!("fox\n{line}")), NoiseKind::Gpu);
        assert_eq!(read(&format!("fox\n{line}, Version: v1.10.1")), NoiseKind::Gpu);
        assert_eq!(
            read(&format!("fox\n{line}, RNG: CPU, Version: v1.10.1")),
            NoiseKind::Cpu
        );
        assert_eq!(read(&format!("fox\n{line}, RNG: NV")), NoiseKind::Gpu);
        assert_eq!(read(&format!("fox\n{line}, RNG: GPU")), NoiseKind::Gpu);
        // Lantern before the field existed: its own generator.
        assert_eq!(
            read(&format!("fox\n{line}, Version: Lantern 0.1.0")),
            NoiseKind::Lantern
        );
        assert_eq!(
            read(&format!("fox\n{line}, RNG: NV, Version: Lantern 0.1.0")),
            NoiseKind::Gpu
        );
        assert!(parse_parameters(&format!("fox\n{line}, RNG: dice")).is_err());
        for rng in NoiseKind::ALL {
            let r = Recipe {
                prompt: "fox".into(),
                rng,
                ..Recipe::default()
            };
            let text = format_parameters(&r);
            assert!(text.contains(&format!("RNG: {}, ", rng.a1111_name())), "{text}");
            assert_eq!(parse_parameters(&text).unwrap().to_recipe(), r);
        }
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
