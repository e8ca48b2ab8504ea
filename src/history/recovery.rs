//! A damaged history is never a dead end: the PNGs are the source of truth.
//!
//! When the database is not a database or fails SQLite's check, it is moved aside (with its
//! `-wal` and `-shm` files, for a support request or a manual rescue), a fresh one is created,
//! and it is refilled from the PNGs in the outputs folder, plus any PNG elsewhere that the
//! damaged file still names. Favourite flags that can still be read are kept.

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::store::History;
use crate::error::{Error, Result};

/// What the GUI or CLI tells the user after a recovery.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveryNotice {
    /// Where the damaged database now is.
    pub moved_to: PathBuf,
    /// SQLite's words for what was wrong.
    pub reason: String,
    /// Entries re-created from PNGs.
    pub rebuilt: usize,
    /// PNGs that could not be read back.
    pub unreadable: usize,
}

impl fmt::Display for RecoveryNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "history was damaged; moved aside to {}; rebuilt {} entries from PNGs",
            self.moved_to.display(),
            self.rebuilt
        )?;
        if self.unreadable > 0 {
            write!(f, " ({} PNGs could not be read)", self.unreadable)?;
        }
        Ok(())
    }
}

/// An open history, and the notice to show when opening it needed a recovery.
pub struct Opened {
    pub history: History,
    pub notice: Option<RecoveryNotice>,
}

impl History {
    /// Opens the history at `db`; if it is damaged, moves it aside, rebuilds it from the PNGs
    /// in `outputs_dir`, and says so in [`Opened::notice`]. Errors that are not damage
    /// (locked, read-only, disk full, written by a newer Lantern) are returned unchanged and
    /// the file is left alone.
    pub fn open_or_recover(db: &Path, outputs_dir: &Path) -> Result<Opened> {
        let reason = match History::open(db) {
            Ok(history) => {
                return Ok(Opened { history, notice: None });
            }
            Err(Error::HistoryCorrupt { detail, .. }) => detail,
            Err(e) => return Err(e),
        };
        tracing::error!(db = %db.display(), %reason, "history database is damaged; rebuilding from PNGs");
        let moved_to = move_aside(db)?;
        let salvaged = salvage(&moved_to);

        let mut history = History::open(db)?;
        let mut report = history.rebuild_from_outputs(outputs_dir)?;
        // PNGs the damaged file still names (outside the outputs folder, e.g. `--output`
        // paths); those already re-imported are skipped by path.
        let named: Vec<PathBuf> = salvaged.iter().map(|(p, _)| p.clone()).collect();
        history.import_files(&named, &mut report)?;
        for (path, favourite) in &salvaged {
            if *favourite && let Some(entry) = history.find_by_path(path)? {
                history.set_favourite(entry.id, true)?;
            }
        }
        let notice = RecoveryNotice {
            moved_to,
            reason,
            rebuilt: report.added,
            unreadable: report.failed.len(),
        };
        tracing::warn!(%notice);
        Ok(Opened {
            history,
            notice: Some(notice),
        })
    }

    /// [`History::open_or_recover`] at the default places (`LANTERN_DATA_DIR` or the
    /// platform data folder).
    pub fn open_default() -> Result<Opened> {
        let data = crate::paths::DataDir::from_env();
        History::open_or_recover(&data.history_db(), &data.outputs())
    }
}

/// Renames `db` (and its `-wal`, `-shm`) to `<db>.corrupt-<UTC time>`; returns the new path.
pub fn move_aside(db: &Path) -> Result<PathBuf> {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let base = format!("{}.corrupt-{stamp}", db.display());
    let target = (0..1000)
        .map(|n| {
            if n == 0 {
                PathBuf::from(&base)
            } else {
                PathBuf::from(format!("{base}-{n}"))
            }
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| PathBuf::from(&base));
    std::fs::rename(db, &target).map_err(|e| Error::io(db, e))?;
    for suffix in ["-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", db.display()));
        let to = PathBuf::from(format!("{}{suffix}", target.display()));
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&from, e)),
        }
    }
    Ok(target)
}

/// Image paths and favourite flags still readable from a damaged database (best effort:
/// reading stops at the first error; a file that is no database yields nothing).
fn salvage(db: &Path) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return out;
    };
    let Ok(mut stmt) = conn.prepare("SELECT image_path, favourite FROM generations") else {
        return out;
    };
    let Ok(mut rows) = stmt.query([]) else {
        return out;
    };
    while let Ok(Some(row)) = rows.next() {
        if let (Ok(path), Ok(fav)) = (row.get::<_, String>(0), row.get::<_, bool>(1)) {
            out.push((PathBuf::from(path), fav));
        }
    }
    out
}
