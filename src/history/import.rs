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

/// Most bytes read from one file (our PNGs are a few MB; a file named `.png` that is a link to
/// `/dev/zero` or a huge file must not be read into memory whole).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

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
    /// `.png` names that are not plain files (FIFOs, devices, links out of the folder or to
    /// something other than a file), with the reason; never opened.
    pub skipped: Vec<(PathBuf, String)>,
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
        if !self.skipped.is_empty() {
            write!(f, ", not plain files {}", self.skipped.len())?;
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
    Ok(find_pngs_and_skips(dir)?.0)
}

/// Files left out, each with the reason.
pub type Skipped = Vec<(PathBuf, String)>;

/// [`find_pngs`], plus the `*.png` names that are not plain files, with the reason: FIFOs,
/// devices, sockets, and symbolic links except those to a plain file inside `dir`.
pub fn find_pngs_and_skips(dir: &Path) -> Result<(Vec<PathBuf>, Skipped)> {
    let root = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    let mut found = Found {
        root,
        pngs: Vec::new(),
        skipped: Vec::new(),
    };
    walk(dir, 0, &mut found).map_err(|e| Error::io(dir, e))?;
    found.pngs.sort();
    found.skipped.sort();
    Ok((found.pngs, found.skipped))
}

struct Found {
    /// The imported folder, canonical: links may point only inside it.
    root: PathBuf,
    pngs: Vec<PathBuf>,
    skipped: Skipped,
}

/// Why a `*.png` entry of type `kind` is not imported, or `None` for a plain file (or a link to
/// a plain file inside `root`).
fn not_plain(path: &Path, kind: std::fs::FileType, root: &Path) -> Option<String> {
    if kind.is_file() {
        return None;
    }
    if !kind.is_symlink() {
        return Some("not a plain file (a FIFO, device or socket)".into());
    }
    let target = match std::fs::canonicalize(path) {
        Ok(t) => t,
        Err(e) => return Some(format!("a link that cannot be followed ({e})")),
    };
    if !target.starts_with(root) {
        return Some(format!("a link to {}, outside the folder", target.display()));
    }
    match std::fs::metadata(&target) {
        Ok(m) if m.is_file() => None,
        Ok(_) => Some(format!("a link to {}, which is not a plain file", target.display())),
        Err(e) => Some(format!("a link that cannot be followed ({e})")),
    }
}

fn walk(dir: &Path, depth: usize, out: &mut Found) -> std::io::Result<()> {
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
            match not_plain(&path, kind, &out.root) {
                None => out.pngs.push(path),
                Some(why) => out.skipped.push((path, why)),
            }
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

/// The bytes of a plain file of at most [`MAX_FILE_BYTES`]; anything else (a FIFO would block
/// the open, a device or a huge file would fill the memory) is refused before it is read.
fn read_plain_file(path: &Path) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let too_big = || format!("larger than {} MiB; not a picture Lantern reads", MAX_FILE_BYTES >> 20);
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a plain file (a FIFO, device or socket)".into());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    // Swapped for something else since the check? Then do not read it.
    if !file.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err("not a plain file (a FIFO, device or socket)".into());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}

fn scan_file(path: &Path) -> Scanned {
    let bytes = match read_plain_file(path) {
        Ok(b) => b,
        Err(why) => return Scanned::Failed(why),
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
        let (files, skipped) = find_pngs_and_skips(dir)?;
        for (path, why) in &skipped {
            tracing::warn!(path = %path.display(), %why, "not importing");
        }
        let mut report = ImportReport {
            skipped,
            ..ImportReport::default()
        };
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
    read_plain_file(path).ok().map(|b| sha256_hex(&b))
}

/// For `path_key` users outside this module.
pub fn normalized_path(path: &Path) -> PathBuf {
    PathBuf::from(path_key(path))
}
