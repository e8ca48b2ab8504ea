//! Finding the tiny autoencoders (TAESD) installed for live previews and Draft decodes, and
//! pairing each with the latent space it decodes.
//!
//! A TAESD is a diffusers folder whose `config.json` names `AutoencoderTiny` (what the Hub
//! repos madebyollin/taesd and madebyollin/taesdxl hold, and what `lantern models download
//! taesd` fetches into the Hugging Face cache), or madebyollin's single decoder file
//! (`taesd_decoder.safetensors`, `taesdxl_decoder.safetensors`: A1111's `models/VAE-approx`,
//! ComfyUI's `models/vae_approx`).
//!
//! taesd and taesdxl have the same architecture and config; only their names tell them apart,
//! so the pairing is by name: `taesdxl` decodes SDXL's latents, `taesd` those of SD 1.x, 2.x
//! and SD-Turbo (one latent space, one VAE). Names of the other variants (`taesd3`, `taef1`,
//! …) are latents Lantern does not make and are skipped. Cheap: configs and file names only.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::discovery::DiscoveryRoots;
use super::hf_cache;
use super::inspect::BaseArch;

/// Which latents a TAESD decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaesdSpace {
    /// SD 1.x, 2.x, SD-Turbo (madebyollin/taesd).
    Sd,
    /// SDXL, SDXL-Turbo, the refiner (madebyollin/taesdxl).
    Sdxl,
}

impl TaesdSpace {
    pub fn of(base: BaseArch) -> TaesdSpace {
        match base {
            BaseArch::Sd1 | BaseArch::Sd2 => TaesdSpace::Sd,
            BaseArch::Sdxl => TaesdSpace::Sdxl,
        }
    }

    /// From a repo, folder or file name: `taesdxl…` or `…taesd…` (not `taesd3`).
    pub fn from_name(name: &str) -> Option<TaesdSpace> {
        let lower = name.to_ascii_lowercase();
        let at = lower.find("taesd")?;
        match lower[at + "taesd".len()..].chars().next() {
            Some('x') if lower[at..].starts_with("taesdxl") => Some(TaesdSpace::Sdxl),
            // taesd3 (SD3's 16-channel latents) and the like.
            Some(c) if c.is_ascii_alphanumeric() => None,
            _ => Some(TaesdSpace::Sd),
        }
    }

    /// The catalog id of the TAESD for this space.
    pub fn catalog_id(self) -> &'static str {
        match self {
            TaesdSpace::Sd => "taesd",
            TaesdSpace::Sdxl => "taesdxl",
        }
    }
}

/// One TAESD found on disk.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaesdInfo {
    /// The repo id for cached ones, else the folder or file name.
    pub name: String,
    /// A diffusers folder, or a `*_decoder.safetensors` file.
    pub path: PathBuf,
    pub space: TaesdSpace,
}

/// Every TAESD under `roots`: Lantern's models folder, the project's `weights/`, the folders
/// the user added (and the `VAE-approx` / `vae_approx` folder beside each), then the Hugging
/// Face cache. A folder or file reached twice is listed once.
pub fn discover_taesds(roots: &DiscoveryRoots) -> Vec<TaesdInfo> {
    let mut places: Vec<PathBuf> = roots.data_dir_models.iter().cloned().collect();
    places.extend(roots.project_weights.iter().cloned());
    for folder in &roots.user_folders {
        let folder = if folder.is_file() {
            folder.parent().unwrap_or(folder)
        } else {
            folder.as_path()
        };
        places.push(folder.to_path_buf());
        if let Some(parent) = folder.parent() {
            places.extend(["VAE-approx", "vae_approx"].map(|n| parent.join(n)));
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut add = |path: &Path, name: String, out: &mut Vec<TaesdInfo>| {
        let Some(space) = TaesdSpace::from_name(&name) else {
            tracing::debug!(path = %path.display(), "a tiny autoencoder whose name says no latent space Lantern makes");
            return;
        };
        if seen.insert(fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())) {
            out.push(TaesdInfo {
                name,
                path: path.to_path_buf(),
                space,
            });
        }
    };
    for place in &places {
        for found in taesds_in(place, 2) {
            add(&found, file_name(&found), &mut out);
        }
    }
    for cache in &roots.hf_caches {
        for repo in hf_cache::cached_repos(cache) {
            for (commit, _) in repo.listed_snapshots() {
                let dir = repo.snapshot_dir(&commit);
                if is_taesd_folder(&dir) {
                    add(&dir, repo.repo_id.clone(), &mut out);
                }
            }
        }
    }
    out
}

/// The TAESD for a model of `base`: the first one found for its latent space.
pub fn taesd_for(found: &[TaesdInfo], base: BaseArch) -> Option<&TaesdInfo> {
    let space = TaesdSpace::of(base);
    found.iter().find(|t| t.space == space)
}

/// A folder in the diffusers layout whose config is an `AutoencoderTiny` and whose weights are
/// there (an interrupted download has none yet).
fn is_taesd_folder(dir: &Path) -> bool {
    let Ok(text) = fs::read_to_string(dir.join("config.json")) else {
        return false;
    };
    let class = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("_class_name")?.as_str().map(str::to_owned));
    class.as_deref() == Some("AutoencoderTiny")
        && [
            "diffusion_pytorch_model.safetensors",
            "diffusion_pytorch_model.fp16.safetensors",
        ]
        .iter()
        .any(|f| dir.join(f).is_file())
}

/// madebyollin's decoder file: `<name>_decoder.safetensors`.
fn is_decoder_file(path: &Path) -> bool {
    let name = file_name(path).to_ascii_lowercase();
    name.ends_with("_decoder.safetensors") && name.contains("taesd") && path.is_file()
}

/// TAESD folders and decoder files in `root` and its subfolders, `depth` levels down; hidden
/// folders and diffusers pipelines are not entered.
fn taesds_in(root: &Path, depth: usize) -> Vec<PathBuf> {
    if is_taesd_folder(root) {
        return vec![root.to_path_buf()];
    }
    let mut out = Vec::new();
    if root.join("model_index.json").is_file() {
        return out;
    }
    let Ok(entries) = fs::read_dir(root) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if file_name(&path).starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if depth > 0 {
                out.extend(taesds_in(&path, depth - 1));
            }
        } else if is_decoder_file(&path) {
            out.push(path);
        }
    }
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_the_latent_space() {
        for (name, space) in [
            ("madebyollin/taesd", Some(TaesdSpace::Sd)),
            ("madebyollin/taesdxl", Some(TaesdSpace::Sdxl)),
            ("taesd_decoder.safetensors", Some(TaesdSpace::Sd)),
            ("TAESDXL_decoder.safetensors", Some(TaesdSpace::Sdxl)),
            ("taesd-tiny", Some(TaesdSpace::Sd)),
            ("taesd3_decoder.safetensors", None),
            ("taef1_decoder.safetensors", None),
            ("my-tiny-vae", None),
        ] {
            assert_eq!(TaesdSpace::from_name(name), space, "{name}");
        }
        assert_eq!(TaesdSpace::of(BaseArch::Sd2), TaesdSpace::Sd);
        assert_eq!(TaesdSpace::of(BaseArch::Sdxl), TaesdSpace::Sdxl);
    }
}
