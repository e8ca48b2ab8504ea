//! From a prompt's `<lora:NAME:WEIGHT>` tags to the LoRA files to merge: each name is a file
//! stem among the LoRA files the caller found on disk (`hub::discovery::discover_loras`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::lora::LoraChoice;
use crate::text::extra_networks::LoraTag;

/// A LoRA file's name as a prompt writes it: the file name without `.safetensors`.
pub fn lora_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.len().checked_sub(".safetensors".len()) {
        Some(cut) if name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(".safetensors") => {
            name[..cut].to_string()
        }
        _ => name,
    }
}

/// The files the tags name, in the order first written; a name written twice adds its weights
/// (A1111 applies it twice, which merges to the same sum).
pub fn choose(tags: &[LoraTag], files: &[PathBuf]) -> Result<Vec<LoraChoice>> {
    let mut by_name: BTreeMap<String, Vec<&PathBuf>> = BTreeMap::new();
    for f in files {
        by_name.entry(lora_name(f)).or_default().push(f);
    }
    let mut choices: Vec<LoraChoice> = Vec::new();
    for tag in tags {
        let candidates = by_name
            .get(&tag.name)
            .or_else(|| {
                // Names differ only in case across file systems; take that only when unique.
                let mut loose = by_name.iter().filter(|(n, _)| n.eq_ignore_ascii_case(&tag.name));
                match (loose.next(), loose.next()) {
                    (Some((_, paths)), None) => Some(paths),
                    _ => None,
                }
            })
            .ok_or_else(|| {
                Error::lora(
                    &tag.name,
                    "not found; put the .safetensors file in the data folder's loras/, weights/loras/ or an added folder (A1111's models/Lora)",
                )
            })?;
        if let [first, second, ..] = candidates.as_slice() {
            return Err(Error::lora(
                &tag.name,
                format!(
                    "two files have this name ({} and {}); rename or remove one",
                    first.display(),
                    second.display()
                ),
            ));
        }
        let path = candidates[0].clone();
        match choices.iter_mut().find(|c| c.path == path) {
            Some(c) => {
                c.te += tag.te;
                c.unet += tag.unet;
            }
            None => choices.push(LoraChoice {
                name: tag.name.clone(),
                path,
                te: tag.te,
                unet: tag.unet,
            }),
        }
    }
    Ok(choices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str, w: f64) -> LoraTag {
        LoraTag {
            name: name.into(),
            te: w,
            unet: w,
        }
    }

    #[test]
    fn names_are_file_stems_and_repeats_add_up() {
        let files = vec![
            PathBuf::from("/a/Ink Style.safetensors"),
            PathBuf::from("/b/x.SAFETENSORS"),
        ];
        assert_eq!(lora_name(&files[0]), "Ink Style");
        assert_eq!(lora_name(&files[1]), "x");
        let c = choose(&[tag("Ink Style", 0.5), tag("x", 1.0), tag("ink style", 0.25)], &files).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].name.as_str(), c[0].te, c[0].unet), ("Ink Style", 0.75, 0.75));
        assert_eq!(c[1].path, files[1]);
    }

    #[test]
    fn missing_and_ambiguous_names_are_refused_by_name() {
        let files = vec![PathBuf::from("/a/ink.safetensors"), PathBuf::from("/b/ink.safetensors")];
        let e = choose(&[tag("ink", 1.0)], &files).unwrap_err().to_string();
        assert!(
            e.contains("LoRA `ink`") && e.contains("/a/ink.safetensors") && e.contains("/b/"),
            "{e}"
        );
        let e = choose(&[tag("nope", 1.0)], &files).unwrap_err().to_string();
        assert!(e.starts_with("LoRA `nope`: not found"), "{e}");
    }
}
