//! The LoRA browser's plain state and the prompt edits it makes: which LoRAs a prompt uses,
//! adding a `<lora:NAME:W>` tag or changing its weight, removing it, whether a LoRA fits the
//! chosen model, and which names a restored prompt asks for that are not on disk. No drawing
//! here (`panels/loras.rs`), no disk access (the models scan lists the files).

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::hub::{BaseArch, LoraInfo, LoraKind};
use crate::model::PipelineKind;
use crate::t;
use crate::text::extra_networks::{lora_spans, lora_tag_text};

use super::history_state::{ThumbCache, ThumbSlot};
use super::state::{AppState, ModelStatus};

/// The weight slider's range and step (A1111's usual range; beyond ±2 pictures break).
pub const WEIGHT_RANGE: RangeInclusive<f64> = -2.0..=2.0;
pub const WEIGHT_STEP: f64 = 0.05;
/// Longest side of a LoRA's preview as the browser draws it, in points.
pub const THUMB_SIZE: f32 = 48.0;
/// Above this many LoRAs the browser offers a filter box.
pub const FILTER_FROM: usize = 5;

/// What the browser keeps between frames (its open state and weight are in the settings).
#[derive(Default)]
pub struct LoraBrowser {
    /// The filter box's text: every word must appear in the name.
    pub filter: String,
    /// The data folder's `loras/`, named in the empty state.
    pub folder: PathBuf,
    /// Preview textures, and per frame which previews were drawn without one.
    pub thumbs: ThumbCache,
    /// Loader ids of the preview files (never reused, so a late result of an old scan
    /// cannot land on a new preview).
    ids: HashMap<PathBuf, i64>,
    next_id: i64,
    /// The models scan whose LoRA list the previews belong to.
    pub seen_scan: u64,
}

impl LoraBrowser {
    /// A preview's picture, asked for when there is none yet.
    pub fn preview(&mut self, path: &Path) -> ThumbSlot {
        let id = match self.ids.get(path) {
            Some(id) => *id,
            None => {
                self.next_id += 1;
                self.ids.insert(path.to_path_buf(), self.next_id);
                self.next_id
            }
        };
        self.thumbs.slot(id, path)
    }

    /// Whether a preview's picture is on screen (loaded and uploaded).
    pub fn preview_shown(&self, path: &Path) -> bool {
        self.ids.get(path).is_some_and(|id| self.thumbs.has_texture(*id))
    }

    /// A new scan: previews may have changed on disk, so they are all loaded again.
    pub fn forget_previews(&mut self) {
        self.ids.clear();
        self.thumbs = ThumbCache::default();
    }
}

/// The chosen model's family, as far as the window knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelArch {
    Known(BaseArch),
    /// Loaded, one text encoder, not listed by the scan: SD 1.x or 2.x.
    SdNotXl,
}

impl ModelArch {
    pub fn label(self) -> String {
        match self {
            ModelArch::Known(base) => base_label(base).to_string(),
            ModelArch::SdNotXl => t!("lora-family-sd-1-or-2"),
        }
    }
}

/// "SD 1.x", "SD 2.x", "SDXL": the names every tool uses.
pub fn base_label(base: BaseArch) -> &'static str {
    match base {
        BaseArch::Sd1 => "SD 1.x",
        BaseArch::Sd2 => "SD 2.x",
        BaseArch::Sdxl => "SDXL",
    }
}

/// A LoRA file's family as the browser shows it.
pub fn family_label(kind: LoraKind) -> String {
    match kind {
        LoraKind::For(base) => base_label(base).to_string(),
        LoraKind::Unknown => t!("lora-family-unknown"),
        LoraKind::NotALora => t!("lora-not-a-lora"),
    }
}

/// The family of the model the next picture uses: from the scan's description of it, else
/// from the loaded model (which tells SDXL from the rest).
pub fn model_arch(state: &AppState) -> Option<ModelArch> {
    let path = state.settings.model.as_ref()?;
    if let Some(m) = state.models.find_local(path) {
        return Some(ModelArch::Known(m.base));
    }
    match &state.model {
        ModelStatus::Ready(info) if &info.path == path => Some(match info.kind {
            PipelineKind::StableDiffusionXl => ModelArch::Known(BaseArch::Sdxl),
            PipelineKind::StableDiffusion => ModelArch::SdNotXl,
        }),
        _ => None,
    }
}

/// Why a LoRA cannot be used with the model ("made for SDXL; this model is SD 1.x"), or
/// `None` when it can (or when either family is unknown: the job then says).
pub fn refusal(kind: LoraKind, model: Option<ModelArch>) -> Option<String> {
    let LoraKind::For(lora) = kind else {
        return match kind {
            LoraKind::NotALora => Some(t!("lora-not-a-lora-tip")),
            _ => None,
        };
    };
    let model = model?;
    let fits = match model {
        ModelArch::Known(base) => base == lora,
        ModelArch::SdNotXl => lora != BaseArch::Sdxl,
    };
    (!fits).then(|| t!("lora-wrong-family", lora = base_label(lora), model = model.label()))
}

/// Whether `name` (a file stem) is the LoRA a tag names: the pipeline matches names exactly,
/// else ignoring case.
pub fn same_name(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// A LoRA the prompt uses: its name as written and its weight (text encoder's, the sum when
/// written twice; `None` when a tag cannot be read).
#[derive(Clone, Debug, PartialEq)]
pub struct UsedLora {
    pub name: String,
    pub weight: Option<f64>,
}

/// The LoRAs `prompt` names, once each, in the order first written.
pub fn used_loras(prompt: &str) -> Vec<UsedLora> {
    let mut used: Vec<UsedLora> = Vec::new();
    for span in lora_spans(prompt) {
        let weight = span.tag.as_ref().map(|t| t.te);
        match used.iter_mut().find(|u| same_name(&u.name, &span.name)) {
            Some(u) => u.weight = u.weight.zip(weight).map(|(a, b)| a + b),
            None => used.push(UsedLora {
                name: span.name,
                weight,
            }),
        }
    }
    used
}

/// `prompt` using `name` at `weight`: its tag's weight changed where it is written (a second
/// tag for it removed, so the weight is the one chosen), or a new tag at the end after a
/// space (A1111's separator; the tag is cut out before encoding, so the text the model sees
/// does not change).
pub fn set_lora(prompt: &str, name: &str, weight: f64) -> String {
    let tag = lora_tag_text(name, weight);
    let spans: Vec<_> = lora_spans(prompt)
        .into_iter()
        .filter(|s| same_name(&s.name, name))
        .collect();
    let Some((first, rest)) = spans.split_first() else {
        if prompt.trim().is_empty() {
            return tag;
        }
        let sep = if prompt.ends_with(char::is_whitespace) { "" } else { " " };
        return format!("{prompt}{sep}{tag}");
    };
    let mut out = prompt.to_string();
    for span in rest.iter().rev() {
        out = cut(&out, span.range.clone());
    }
    out.replace_range(first.range.clone(), &tag);
    out
}

/// `prompt` without any tag for `name`, and without the space or comma that separated it.
pub fn remove_lora(prompt: &str, name: &str) -> String {
    let mut out = prompt.to_string();
    for span in lora_spans(prompt).iter().rev().filter(|s| same_name(&s.name, name)) {
        out = cut(&out, span.range.clone());
    }
    out
}

/// `text` without `range`, tidying the separators around it: "a, <tag>, b" → "a, b",
/// "a <tag>" → "a", "<tag> a" → "a".
fn cut(text: &str, range: std::ops::Range<usize>) -> String {
    let before = &text[..range.start];
    let after = &text[range.end..];
    let before_trim = before.trim_end_matches([' ', '\t']);
    let after_trim = after.trim_start_matches([' ', '\t']);
    if before_trim.is_empty() || before_trim.ends_with('\n') {
        // First on its line: drop what separated it from the next words.
        let after_trim = after_trim.strip_prefix(',').unwrap_or(after_trim);
        return format!("{before_trim}{}", after_trim.trim_start_matches([' ', '\t']));
    }
    if after_trim.is_empty() || after_trim.starts_with('\n') {
        // Last on its line: drop the separator before it.
        let before_trim = before_trim.strip_suffix(',').unwrap_or(before_trim);
        return format!("{}{after_trim}", before_trim.trim_end_matches([' ', '\t']));
    }
    if before_trim.ends_with(',') && after_trim.starts_with(',') {
        return format!("{before_trim}{}", &after[after.len() - after_trim.len() + 1..]);
    }
    let space = if before.len() != before_trim.len() || after.len() != after_trim.len() {
        " "
    } else {
        ""
    };
    format!("{before_trim}{space}{after_trim}")
}

/// The names `prompt`'s tags ask for that are none of `found` (each once, as first written).
pub fn missing_loras(prompt: &str, found: &[LoraInfo]) -> Vec<String> {
    used_loras(prompt)
        .into_iter()
        .map(|u| u.name)
        .filter(|name| !found.iter().any(|l| same_name(&l.name, name)))
        .collect()
}

/// Whether a LoRA's name has every word of the filter (any case).
pub fn matches_filter(name: &str, filter: &str) -> bool {
    let name = name.to_lowercase();
    filter.to_lowercase().split_whitespace().all(|word| name.contains(word))
}

/// A weight as the browser shows it ("0.6", "-1", "1.25").
pub fn weight_text(weight: f64) -> String {
    let w = format!("{weight:.2}");
    let w = w.trim_end_matches('0').trim_end_matches('.');
    if w == "-0" { "0".into() } else { w.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, kind: LoraKind) -> LoraInfo {
        LoraInfo {
            path: PathBuf::from(format!("/l/{name}.safetensors")),
            name: name.into(),
            size: 1,
            kind,
            preview: None,
        }
    }

    #[test]
    fn a_click_adds_a_tag_at_the_end_or_changes_its_weight() {
        assert_eq!(set_lora("", "ink", 1.0), "<lora:ink:1>");
        assert_eq!(set_lora("a cat", "ink", 0.6), "a cat <lora:ink:0.6>");
        assert_eq!(set_lora("a cat, ", "ink", 0.6), "a cat, <lora:ink:0.6>");
        assert_eq!(set_lora("a cat\n", "ink", 0.6), "a cat\n<lora:ink:0.6>");
        // Already there: the weight changes in place, nothing is added.
        let p = "a <lora:ink:0.6>, cat <lora:x:1>";
        assert_eq!(set_lora(p, "ink", -0.35), "a <lora:ink:-0.35>, cat <lora:x:1>");
        assert_eq!(set_lora(p, "INK", 1.0), "a <lora:INK:1>, cat <lora:x:1>");
        // Written twice (or unreadable): one tag with the chosen weight is left.
        assert_eq!(
            set_lora("<lora:ink:abc> a, <lora:ink:0.2>, b", "ink", 0.8),
            "<lora:ink:0.8> a, b"
        );
    }

    #[test]
    fn removing_a_tag_tidies_its_separators() {
        for (prompt, left) in [
            ("a cat <lora:ink:0.6>", "a cat"),
            ("<lora:ink:1> a cat", "a cat"),
            ("<lora:ink:1>, a cat", "a cat"),
            ("a, <lora:ink:1>, cat", "a, cat"),
            ("a cat, <lora:ink:1>", "a cat"),
            ("a <lora:ink:1> cat", "a cat"),
            ("a<lora:ink:1>cat", "acat"),
            ("a <lora:ink:1>\nb <lora:ink:2>", "a\nb"),
            ("<lora:ink:1>", ""),
            ("a <lora:x:1> <lora:ink:1> b", "a <lora:x:1> b"),
        ] {
            assert_eq!(remove_lora(prompt, "ink"), left, "{prompt}");
        }
        assert_eq!(remove_lora("a cat", "ink"), "a cat");
    }

    #[test]
    fn used_loras_are_listed_once_with_their_weight() {
        let used = used_loras("<lora:a:0.5> x <lora:b:oops> <lora:A:0.25> <hypernet:h:1>");
        assert_eq!(
            used,
            vec![
                UsedLora {
                    name: "a".into(),
                    weight: Some(0.75)
                },
                UsedLora {
                    name: "b".into(),
                    weight: None
                },
            ]
        );
    }

    #[test]
    fn families_must_match_the_model() {
        let sd1 = Some(ModelArch::Known(BaseArch::Sd1));
        let xl = LoraKind::For(BaseArch::Sdxl);
        assert_eq!(refusal(xl, sd1).as_deref(), Some("made for SDXL; this model is SD 1.x"));
        assert_eq!(refusal(LoraKind::For(BaseArch::Sd1), sd1), None);
        assert!(refusal(LoraKind::For(BaseArch::Sd2), sd1).is_some());
        assert!(refusal(LoraKind::For(BaseArch::Sd1), Some(ModelArch::Known(BaseArch::Sdxl))).is_some());
        assert!(refusal(xl, Some(ModelArch::SdNotXl)).is_some());
        assert_eq!(refusal(LoraKind::For(BaseArch::Sd2), Some(ModelArch::SdNotXl)), None);
        assert_eq!(refusal(xl, None), None, "no model: the job decides");
        assert_eq!(refusal(LoraKind::Unknown, sd1), None);
        assert!(refusal(LoraKind::NotALora, None).is_some());
    }

    #[test]
    fn missing_names_filters_and_weights() {
        let found = [info("Ink", LoraKind::Unknown), info("b", LoraKind::NotALora)];
        assert_eq!(
            missing_loras(
                "<lora:ink:1> <lora:gone:1> <lora:b:1> <lora:also gone:1> <lora:gone:2>",
                &found
            ),
            vec!["gone".to_string(), "also gone".to_string()]
        );
        assert!(matches_filter("Ink Style v2", "style ink"));
        assert!(!matches_filter("Ink Style v2", "watercolor"));
        assert!(matches_filter("anything", "  "));
        assert_eq!(weight_text(0.6000000000000001), "0.6");
        assert_eq!(weight_text(-1.0), "-1");
        assert_eq!(weight_text(-0.001), "0");
        assert_eq!(weight_text(1.25), "1.25");
    }
}
