//! A1111's extra-network tags: `<lora:NAME:WEIGHT>` written anywhere in a prompt.
//!
//! As in A1111's `extra_networks.parse_prompt`, every `<word:args>` tag (`<(\w+):([^>]+)>`)
//! is cut out of the text before the prompt is tokenized, so it never reaches CLIP and is not
//! counted; its arguments are split on `:`. For `lora` (and its old alias `lyco`) the
//! positional arguments are the file's stem, the text-encoder weight (default 1) and the UNet
//! weight (default: the text-encoder weight); `te=` and `unet=` name them too. Other networks
//! (hypernetworks, …) are not something Lantern runs, and say so instead of being ignored.

use crate::error::{Error, Result};

/// One `<lora:…>` tag.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraTag {
    /// The LoRA file's stem, as written.
    pub name: String,
    /// Multiplier for the text-encoder layers.
    pub te: f64,
    /// Multiplier for the UNet layers.
    pub unet: f64,
}

/// A prompt with its tags cut out.
#[derive(Clone, Debug, PartialEq)]
pub struct Stripped {
    /// The text the encoder sees.
    pub text: String,
    /// The `<lora:…>` tags in the order written (a name written twice appears twice).
    pub loras: Vec<LoraTag>,
}

/// One `<name:args>` tag found at `range` in the prompt.
struct Tag<'a> {
    range: std::ops::Range<usize>,
    network: &'a str,
    args: &'a str,
}

/// Finds the next tag at or after `from`, with Python's `<(\w+):([^>]+)>` semantics.
fn next_tag(prompt: &str, from: usize) -> Option<Tag<'_>> {
    let mut search = from;
    while let Some(offset) = prompt[search..].find('<') {
        let start = search + offset;
        let rest = &prompt[start + 1..];
        let word_len: usize = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .map(char::len_utf8)
            .sum();
        let after_word = &rest[word_len..];
        if word_len > 0
            && let Some(args_part) = after_word.strip_prefix(':')
            && let Some(end) = args_part.find('>')
            && end > 0
        {
            let args_start = start + 1 + word_len + 1;
            return Some(Tag {
                range: start..args_start + end + 1,
                network: &rest[..word_len],
                args: &args_part[..end],
            });
        }
        search = start + 1;
    }
    None
}

/// Cuts the tags out of `prompt` and reads the LoRA ones.
pub fn strip(prompt: &str) -> Result<Stripped> {
    let mut text = String::with_capacity(prompt.len());
    let mut loras = Vec::new();
    let mut at = 0;
    while let Some(tag) = next_tag(prompt, at) {
        text.push_str(&prompt[at..tag.range.start]);
        at = tag.range.end;
        match tag.network {
            "lora" | "lyco" => loras.push(lora_tag(&prompt[tag.range.clone()], tag.args)?),
            other => {
                return Err(Error::invalid(format!(
                    "`{}`: `{other}` networks are not supported (Lantern runs LoRAs: <lora:NAME:WEIGHT>)",
                    &prompt[tag.range]
                )));
            }
        }
    }
    text.push_str(&prompt[at..]);
    Ok(Stripped { text, loras })
}

/// The prompt's text without its tags, for counting and display: tags that cannot be read are
/// cut out all the same (the error is reported when the picture is made).
pub fn text_without_tags(prompt: &str) -> String {
    let mut text = String::with_capacity(prompt.len());
    let mut at = 0;
    while let Some(tag) = next_tag(prompt, at) {
        text.push_str(&prompt[at..tag.range.start]);
        at = tag.range.end;
    }
    text.push_str(&prompt[at..]);
    text
}

fn lora_tag(whole: &str, args: &str) -> Result<LoraTag> {
    let mut positional = Vec::new();
    let (mut te, mut unet) = (None, None);
    for item in args.split(':') {
        match item.split_once('=') {
            Some(("te", v)) => te = Some(weight(whole, v)?),
            Some(("unet", v)) => unet = Some(weight(whole, v)?),
            // A1111's dynamic-dimension option changes nothing for a merged LoRA.
            Some(("dyn", _)) => {}
            Some((key, _)) => return Err(Error::invalid(format!("`{whole}`: unknown option `{key}=`"))),
            None => positional.push(item),
        }
    }
    let name = positional.first().map(|n| n.trim()).unwrap_or_default();
    if name.is_empty() {
        return Err(Error::invalid(format!("`{whole}`: the LoRA's name is missing")));
    }
    let te = match (te, positional.get(1)) {
        (Some(w), _) => w,
        (None, Some(v)) => weight(whole, v)?,
        (None, None) => 1.0,
    };
    let unet = match (unet, positional.get(2)) {
        (Some(w), _) => w,
        (None, Some(v)) => weight(whole, v)?,
        (None, None) => te,
    };
    Ok(LoraTag {
        name: name.to_string(),
        te,
        unet,
    })
}

fn weight(whole: &str, value: &str) -> Result<f64> {
    match value.trim().parse::<f64>() {
        Ok(w) if w.is_finite() => Ok(w),
        _ => Err(Error::invalid(format!("`{whole}`: weight `{value}` is not a number"))),
    }
}

/// A `<lora:…>` tag where it stands in a prompt (for editing the prompt around it).
#[derive(Clone, Debug, PartialEq)]
pub struct LoraSpan {
    /// Byte range of the whole tag, `<` to `>`.
    pub range: std::ops::Range<usize>,
    /// The LoRA's name as written (trimmed).
    pub name: String,
    /// Its weights; `None` when the tag cannot be read (a weight that is not a number, …).
    pub tag: Option<LoraTag>,
}

/// Every `<lora:…>` (and `<lyco:…>`) tag of `prompt` in order, readable or not, with where
/// it stands. Tags with no name at all are left out.
pub fn lora_spans(prompt: &str) -> Vec<LoraSpan> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(tag) = next_tag(prompt, at) {
        at = tag.range.end;
        if !matches!(tag.network, "lora" | "lyco") {
            continue;
        }
        let parsed = lora_tag(&prompt[tag.range.clone()], tag.args).ok();
        let name = match &parsed {
            Some(t) => t.name.clone(),
            None => tag.args.split(':').next().unwrap_or_default().trim().to_string(),
        };
        if !name.is_empty() {
            out.push(LoraSpan {
                range: tag.range,
                name,
                tag: parsed,
            });
        }
    }
    out
}

/// `<lora:NAME:WEIGHT>` as A1111 writes it (the weight without trailing zeros).
pub fn lora_tag_text(name: &str, weight: f64) -> String {
    let w = format!("{weight:.2}");
    let w = w.trim_end_matches('0').trim_end_matches('.');
    format!("<lora:{name}:{w}>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str, te: f64, unet: f64) -> LoraTag {
        LoraTag {
            name: name.into(),
            te,
            unet,
        }
    }

    #[test]
    fn tags_are_cut_out_and_read() {
        let s = strip("a cat <lora:ink style:0.8>, best <lora:x:-1.5:0.5> <lyco:y>").unwrap();
        assert_eq!(s.text, "a cat , best  ");
        assert_eq!(
            s.loras,
            vec![tag("ink style", 0.8, 0.8), tag("x", -1.5, 0.5), tag("y", 1.0, 1.0)]
        );
        let s = strip("<lora:z:unet=0.3:te=0.7>").unwrap();
        assert_eq!(s.loras, vec![tag("z", 0.7, 0.3)]);
        assert_eq!(strip("<lora:z: 0.5 >").unwrap().loras, vec![tag("z", 0.5, 0.5)]);
    }

    #[test]
    fn text_that_only_looks_like_a_tag_stays() {
        for text in [
            "a < b > c",
            "<lora>",
            "<:x>",
            "<lora:>",
            "<lora:x",
            "a <b c:d>",
            "2 < 3: 4",
        ] {
            let s = strip(text).unwrap();
            assert_eq!(s.text, text);
            assert!(s.loras.is_empty(), "{text}");
        }
        // Python's \w takes any letter, and the first `>` closes the tag.
        let s = strip("<lora:猫:1>>").unwrap();
        assert_eq!((s.text.as_str(), s.loras[0].name.as_str()), (">", "猫"));
    }

    #[test]
    fn bad_tags_give_one_line() {
        for (text, says) in [
            ("<lora:x:abc>", "weight `abc` is not a number"),
            ("<lora:x:nan>", "not a number"),
            ("<lora: :1>", "name is missing"),
            ("<lora:x:foo=1>", "unknown option `foo=`"),
            ("<hypernet:h:1>", "`hypernet` networks are not supported"),
        ] {
            let e = strip(text).unwrap_err().to_string();
            assert!(e.contains(says) && !e.contains('\n'), "{text}: {e}");
        }
        assert_eq!(text_without_tags("a <lora:x:abc> b <hypernet:h>"), "a  b ");
    }

    #[test]
    fn spans_say_where_each_lora_tag_stands() {
        let prompt = "a <lora:ink:0.5> b <hypernet:h:1> <lyco:x:abc> <lora: :1>";
        let spans = lora_spans(prompt);
        assert_eq!(spans.len(), 2);
        assert_eq!(&prompt[spans[0].range.clone()], "<lora:ink:0.5>");
        assert_eq!(spans[0].tag, Some(tag("ink", 0.5, 0.5)));
        assert_eq!((spans[1].name.as_str(), spans[1].tag.is_none()), ("x", true));
        assert_eq!(&prompt[spans[1].range.clone()], "<lyco:x:abc>");
    }

    #[test]
    fn tag_text_reads_back() {
        assert_eq!(lora_tag_text("ink", 1.0), "<lora:ink:1>");
        assert_eq!(lora_tag_text("ink", 0.75), "<lora:ink:0.75>");
        assert_eq!(lora_tag_text("ink", -0.5), "<lora:ink:-0.5>");
        let s = strip(&lora_tag_text("ink", 0.6)).unwrap();
        assert_eq!(s.loras, vec![tag("ink", 0.6, 0.6)]);
    }
}
