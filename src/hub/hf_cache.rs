//! The Hugging Face cache layout, exactly as `huggingface_hub` writes it, so models downloaded
//! by Python tools are used in place and ours are visible to them:
//!
//! ```text
//! <cache>/models--ORG--NAME/
//!     blobs/<etag>                  file contents, named by sha256 (LFS) or git blob id
//!     blobs/<etag>.incomplete       a download in progress (resumed with a Range request)
//!     refs/main                     the commit id `main` pointed to when downloaded
//!     snapshots/<commit>/<path>     relative symlinks into ../../blobs/
//! ```

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Kind, Result};

/// Where the Hub cache lives, following huggingface_hub's precedence: `HF_HUB_CACHE`, else
/// `HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
pub fn default_cache_dir() -> Option<PathBuf> {
    cache_dir_from(|key| std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from))
}

/// [`default_cache_dir`] with the environment passed in (tests, and callers with overrides).
pub fn cache_dir_from(lookup: impl Fn(&str) -> Option<PathBuf>) -> Option<PathBuf> {
    if let Some(dir) = lookup("HF_HUB_CACHE") {
        return Some(dir);
    }
    if let Some(home) = lookup("HF_HOME") {
        return Some(home.join("hub"));
    }
    if let Some(xdg) = lookup("XDG_CACHE_HOME") {
        return Some(xdg.join("huggingface").join("hub"));
    }
    let home = directories::BaseDirs::new()?.home_dir().to_path_buf();
    Some(home.join(".cache").join("huggingface").join("hub"))
}

/// `org/name` → `models--org--name`.
pub fn repo_folder_name(repo_id: &str) -> String {
    format!("models--{}", repo_id.replace('/', "--"))
}

/// `models--org--name` → `org/name`; `None` for datasets, spaces and other folders.
pub fn repo_id_from_folder(folder: &str) -> Option<String> {
    let rest = folder.strip_prefix("models--")?;
    let (org, name) = rest.split_once("--")?;
    if org.is_empty() || name.is_empty() {
        return None;
    }
    Some(format!("{org}/{}", name.replace("--", "/")))
}

/// A snapshot folder inside a cache (`…/models--ORG--NAME/snapshots/REV`) → (`ORG/NAME`, `REV`);
/// `None` for any other folder. The one place that reads the cache's folder layout from a path.
pub fn snapshot_of(path: &Path) -> Option<(String, String)> {
    let commit = path.file_name()?.to_str()?.to_string();
    let snapshots = path.parent()?;
    if snapshots.file_name()? != "snapshots" {
        return None;
    }
    let repo_id = repo_id_from_folder(snapshots.parent()?.file_name()?.to_str()?)?;
    Some((repo_id, commit))
}

/// Checks a repo id before it becomes part of a path or URL: `org/name`, no `..`, no odd
/// characters. Hub ids are ASCII letters, digits, `-`, `_`, `.`.
pub fn validate_repo_id(repo_id: &str) -> Result<()> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && !p.contains("--")
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo_id.split_once('/') {
        Some((org, name)) if ok_part(org) && ok_part(name) => Ok(()),
        _ => Err(Error::invalid(format!(
            "`{repo_id}` is not a model name from the catalog nor a repo id like `org/name`"
        ))),
    }
}

/// Checks a file path inside a repo: relative, forward slashes, no `..`.
pub fn validate_repo_path(path: &str) -> Result<()> {
    let p = Path::new(path);
    let fine = !path.is_empty() && !path.contains('\\') && p.components().all(|c| matches!(c, Component::Normal(_)));
    if fine {
        Ok(())
    } else {
        Err(Error::download(
            Kind::Network,
            format!("refusing unsafe file path `{path}` from the server"),
        ))
    }
}

/// One repo's folder in the cache.
#[derive(Debug, Clone)]
pub struct RepoCache {
    pub repo_id: String,
    pub dir: PathBuf,
}

impl RepoCache {
    pub fn new(cache_dir: &Path, repo_id: &str) -> Self {
        RepoCache {
            repo_id: repo_id.to_owned(),
            dir: cache_dir.join(repo_folder_name(repo_id)),
        }
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs")
    }

    pub fn blob_path(&self, blob_id: &str) -> PathBuf {
        self.blobs_dir().join(blob_id)
    }

    pub fn incomplete_path(&self, blob_id: &str) -> PathBuf {
        self.blobs_dir().join(format!("{blob_id}.incomplete"))
    }

    pub fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit)
    }

    pub fn ref_path(&self, revision: &str) -> PathBuf {
        self.dir.join("refs").join(revision)
    }

    /// The commit a ref (e.g. `main`) points to, if recorded.
    pub fn read_ref(&self, revision: &str) -> Option<String> {
        let text = fs::read_to_string(self.ref_path(revision)).ok()?;
        let commit = text.trim();
        (!commit.is_empty()).then(|| commit.to_owned())
    }

    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        if revision == commit {
            return Ok(());
        }
        let path = self.ref_path(revision);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        fs::write(&path, commit).map_err(|e| Error::io(&path, e))
    }

    /// The snapshots worth listing: the ones refs point to (`main` first), or, when there are
    /// no refs at all, every snapshot folder. Returns (commit, ref names).
    pub fn listed_snapshots(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        let mut refs = Vec::new();
        collect_refs(&self.dir.join("refs"), "", &mut refs);
        refs.sort_by_key(|(name, _)| (name != "main", name.clone()));
        for (name, commit) in refs {
            if !self.snapshot_dir(&commit).is_dir() {
                continue;
            }
            match out.iter_mut().find(|(c, _)| *c == commit) {
                Some((_, names)) => names.push(name),
                None => out.push((commit, vec![name])),
            }
        }
        if out.is_empty()
            && let Ok(entries) = fs::read_dir(self.dir.join("snapshots"))
        {
            for entry in entries.flatten() {
                if entry.path().is_dir() {
                    out.push((entry.file_name().to_string_lossy().into_owned(), Vec::new()));
                }
            }
            out.sort();
        }
        out
    }
}

fn collect_refs(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        if path.is_dir() {
            collect_refs(&path, &format!("{name}/"), out);
        } else if let Ok(text) = fs::read_to_string(&path) {
            let commit = text.trim().to_owned();
            if !commit.is_empty() {
                out.push((name, commit));
            }
        }
    }
}

/// Every model repo in a cache folder.
pub fn cached_repos(cache_dir: &Path) -> Vec<RepoCache> {
    let Ok(entries) = fs::read_dir(cache_dir) else {
        return Vec::new();
    };
    let mut repos: Vec<RepoCache> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let repo_id = repo_id_from_folder(&e.file_name().to_string_lossy())?;
            Some(RepoCache { repo_id, dir: e.path() })
        })
        .collect();
    repos.sort_by(|a, b| a.repo_id.cmp(&b.repo_id));
    repos
}

/// The relative link target from `snapshots/<commit>/<path>` to `blobs/<id>`, the way
/// huggingface_hub writes it (e.g. `../../../blobs/<id>` for `unet/config.json`), so the cache
/// folder can be moved as a whole.
pub fn relative_blob_target(repo_path: &str, blob_id: &str) -> PathBuf {
    let depth = repo_path.split('/').count(); // file's own dir levels below the snapshot + 1
    let mut target = PathBuf::new();
    for _ in 0..depth + 1 {
        target.push("..");
    }
    target.push("blobs");
    target.push(blob_id);
    target
}

/// Puts `snapshot_file` in place pointing at `blob`: a relative symlink where the platform allows
/// it, else a copy (Windows without developer mode, some network drives).
pub fn link_blob(blob: &Path, snapshot_file: &Path, repo_path: &str, blob_id: &str) -> Result<()> {
    if let Some(parent) = snapshot_file.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    if fs::symlink_metadata(snapshot_file).is_ok() {
        fs::remove_file(snapshot_file).map_err(|e| Error::io(snapshot_file, e))?;
    }
    let target = relative_blob_target(repo_path, blob_id);
    match symlink(&target, snapshot_file) {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::debug!("symlink failed ({e}); copying {}", blob.display());
            fs::copy(blob, snapshot_file)
                .map(|_| ())
                .map_err(|e| Error::io(snapshot_file, e))
        }
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(not(any(unix, windows)))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("symlinks not supported"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_precedence() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| PathBuf::from(v))
        };
        assert_eq!(
            cache_dir_from(env(&[("HF_HUB_CACHE", "/a"), ("HF_HOME", "/b")])),
            Some(PathBuf::from("/a"))
        );
        assert_eq!(
            cache_dir_from(env(&[("HF_HOME", "/b"), ("XDG_CACHE_HOME", "/c")])),
            Some(PathBuf::from("/b/hub"))
        );
        assert_eq!(
            cache_dir_from(env(&[("XDG_CACHE_HOME", "/c")])),
            Some(PathBuf::from("/c/huggingface/hub"))
        );
        let fallback = cache_dir_from(env(&[])).expect("home dir");
        assert!(fallback.ends_with(".cache/huggingface/hub"));
    }

    #[test]
    fn repo_folder_names_round_trip() {
        assert_eq!(
            repo_folder_name("stabilityai/sd-turbo"),
            "models--stabilityai--sd-turbo"
        );
        assert_eq!(
            repo_id_from_folder("models--stabilityai--sd-turbo").as_deref(),
            Some("stabilityai/sd-turbo")
        );
        assert_eq!(repo_id_from_folder("datasets--a--b"), None);
        assert_eq!(repo_id_from_folder("models--x"), None);
    }

    #[test]
    fn repo_ids_and_paths_are_checked() {
        assert!(validate_repo_id("stable-diffusion-v1-5/stable-diffusion-v1-5").is_ok());
        assert!(validate_repo_id("sd-turbo").is_err());
        assert!(validate_repo_id("../etc").is_err());
        assert!(validate_repo_id("a/b/c").is_err());
        assert!(validate_repo_path("unet/config.json").is_ok());
        assert!(validate_repo_path("../x").is_err());
        assert!(validate_repo_path("/etc/passwd").is_err());
    }

    #[test]
    fn relative_targets_climb_to_the_repo_folder() {
        assert_eq!(
            relative_blob_target("model_index.json", "abc"),
            PathBuf::from("../../blobs/abc")
        );
        assert_eq!(
            relative_blob_target("unet/config.json", "abc"),
            PathBuf::from("../../../blobs/abc")
        );
    }
}
