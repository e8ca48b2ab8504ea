//! Adding PNGs made by Lantern or AUTOMATIC1111 to the history, from their `parameters` text.
//! The PNGs are the source of truth: this is also how a damaged history is rebuilt.

use std::fmt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::entry::NewEntry;
use super::store::{History, path_key};
use crate::error::{Error, Result};
use crate::output::{parse_parameters, read_parameters};

/// How deep `import` looks into sub-folders (date folders, per-model folders, …).
const MAX_DEPTH: usize = 8;

/// Rows per transaction during an import: big enough to be quick, small enough that an
/// interrupted import keeps most of its work.
const BATCH: usize = 256;

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportReport {
    /// New entries.
    pub added: usize,
    /// Files already in the history (same path, or the same bytes at another path that
    /// still exists).
    pub already_known: usize,
    /// Entries whose file had moved: found again by content and pointed at the new path.
    pub relinked: usize,
    /// PNGs without a `parameters` text (not made by Lantern or A1111).
    pub without_parameters: usize,
    /// Files that could not be read or whose parameters did not parse, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "added {}, already known {}", self.added, self.already_known)?;
        if self.relinked > 0 {
            write!(f, ", moved files found again {}", self.relinked)?;
        }
        if self.without_parameters > 0 {
            write!(f, ", without parameters {}", self.without_parameters)?;
        }
        if !self.failed.is_empty() {
            write!(f, ", unreadable {}", self.failed.len())?;
        }
        Ok(())
    }
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every `*.png` under `dir` (sub-folders too, hidden ones skipped, symlinked folders not
/// followed so a link loop cannot trap us), sorted by path.
pub fn find_pngs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    walk(dir, 0, &mut out).map_err(|e| Error::io(dir, e))?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        let name = entry.file_name();
        let hidden = name.to_string_lossy().starts_with('.');
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !hidden && depth < MAX_DEPTH {
                // A sub-folder we cannot read is skipped, not fatal.
                if let Err(e) = walk(&path, depth + 1, out) {
                    tracing::warn!(path = %path.display(), error = %e, "skipping unreadable folder");
                }
            }
        } else if !hidden && path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
            out.push(path);
        }
    }
    Ok(())
}

/// A PNG read for import: its entry, or why not.
enum Scanned {
    Entry(Box<NewEntry>),
    NoParameters,
    Failed(String),
}

fn scan_file(path: &Path) -> Scanned {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Scanned::Failed(e.to_string()),
    };
    let text = match read_parameters(&bytes) {
        Ok(Some(t)) => t,
        Ok(None) => return Scanned::NoParameters,
        Err(e) => return Scanned::Failed(e.to_string()),
    };
    let parsed = match parse_parameters(&text) {
        Ok(p) => p,
        Err(e) => return Scanned::Failed(e.to_string()),
    };
    let created_at = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok())
        .unwrap_or_else(Timestamp::now);
    Scanned::Entry(Box::new(NewEntry {
        params: parsed.to_recipe(),
        image_path: path.to_path_buf(),
        created_at,
        duration_ms: None,
        favourite: false,
        file_sha256: Some(sha256_hex(&bytes)),
    }))
}

impl History {
    /// Adds every PNG under `dir` that carries generation parameters and is not recorded yet.
    ///
    /// A file counts as recorded when its path is, or when a file with the same bytes is
    /// recorded at a path that still exists (a copy). When the recorded path no longer
    /// exists, the file was moved: the entry is pointed at the new path, keeping its
    /// favourite flag and creation time.
    pub fn import_dir(&mut self, dir: &Path) -> Result<ImportReport> {
        let files = find_pngs(dir)?;
        let mut report = ImportReport::default();
        let mut pending: Vec<NewEntry> = Vec::new();
        let mut pending_hashes = std::collections::HashSet::new();
        for path in files {
            if self.find_by_path(&path)?.is_some() {
                report.already_known += 1;
                continue;
            }
            let entry = match scan_file(&path) {
                Scanned::Entry(e) => e,
                Scanned::NoParameters => {
                    report.without_parameters += 1;
                    continue;
                }
                Scanned::Failed(why) => {
                    tracing::warn!(path = %path.display(), %why, "cannot import");
                    report.failed.push((path, why));
                    continue;
                }
            };
            let hash = entry.file_sha256.clone().unwrap_or_default();
            if let Some(known) = self.find_by_hash(&hash)? {
                if known.image_path.exists() {
                    report.already_known += 1;
                } else {
                    self.relink(known.id, &path)?;
                    report.relinked += 1;
                }
                continue;
            }
            if !pending_hashes.insert(hash) {
                report.already_known += 1; // a second copy within this very import
                continue;
            }
            pending.push(*entry);
            if pending.len() >= BATCH {
                report.added += self.insert_many(&pending)?.len();
                pending.clear();
            }
        }
        report.added += self.insert_many(&pending)?.len();
        tracing::info!(dir = %dir.display(), %report, "import finished");
        Ok(report)
    }

    /// Re-creates entries from the PNGs in the outputs folder (a missing folder is an empty
    /// one): what [`History::open_or_recover`] runs after moving a damaged database aside.
    pub fn rebuild_from_outputs(&mut self, outputs_dir: &Path) -> Result<ImportReport> {
        if !outputs_dir.is_dir() {
            return Ok(ImportReport::default());
        }
        self.import_dir(outputs_dir)
    }

    /// Adds single files (those a damaged database still named outside the outputs folder).
    pub(super) fn import_files(&mut self, files: &[PathBuf], report: &mut ImportReport) -> Result<()> {
        let mut pending = Vec::new();
        for path in files {
            if !path.is_file() || self.find_by_path(path)?.is_some() {
                continue;
            }
            match scan_file(path) {
                Scanned::Entry(e) => pending.push(*e),
                Scanned::NoParameters => report.without_parameters += 1,
                Scanned::Failed(why) => report.failed.push((path.clone(), why)),
            }
        }
        report.added += self.insert_many(&pending)?.len();
        Ok(())
    }
}

/// The file's SHA-256, or `None` when it cannot be read (recording still goes ahead).
pub fn hash_file(path: &Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| sha256_hex(&b))
}

/// For `path_key` users outside this module.
pub fn normalized_path(path: &Path) -> PathBuf {
    PathBuf::from(path_key(path))
}
