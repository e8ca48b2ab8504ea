//! Writing a file so that readers see either nothing or the whole file: a temp file in the
//! same folder, fsync, then rename (and fsync the folder, so the rename itself survives a
//! power cut on Unix). A crash or Ctrl+C mid-write leaves at most a hidden `.tmp` file.
//!
//! The temp name is `.lantern-<pid>-<counter>.tmp`, short and independent of the
//! destination's name, so any destination whose name the file system accepts can be written
//! (a name derived from the destination's would push a legal 250-byte name over the 255-byte
//! limit of a path component only after the whole generation).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// What to do when the destination exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Replace it atomically (an explicit `--output` the user named).
    Replace,
    /// Never touch it; fail with `AlreadyExists` instead.
    Keep,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temp file next to `dest`, deleted on drop unless persisted.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The longest file name (one path component, in bytes) that Linux, macOS and Windows file
/// systems all accept: 255 (bytes on Linux and macOS, UTF-16 units on Windows, where a UTF-8
/// byte count is never smaller).
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// `.lantern-<pid>-<counter>.tmp`: at most 45 bytes whatever the destination.
fn temp_name() -> String {
    format!(
        ".lantern-{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn write_temp(dest: &Path, bytes: &[u8]) -> Result<TempFile> {
    let path = parent_dir(dest).join(temp_name());
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let temp = TempFile { path, armed: true };
    file.write_all(bytes).map_err(|e| Error::io(&temp.path, e))?;
    file.sync_all().map_err(|e| Error::io(&temp.path, e))?;
    Ok(temp)
}

/// `path.parent()`, with `""` meaning the current folder.
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes a completed rename durable (Unix: fsync the folder; elsewhere a no-op).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Writes `bytes` to `dest` atomically.
///
/// With [`Existing::Keep`], an existing `dest` is an `Io` error of kind `AlreadyExists`
/// and is left untouched (a hard link claims the name atomically; on file systems without
/// hard links we fall back to check-then-rename).
pub fn write_atomic(dest: &Path, bytes: &[u8], existing: Existing) -> Result<()> {
    let mut temp = write_temp(dest, bytes)?;
    match existing {
        Existing::Replace => {
            std::fs::rename(&temp.path, dest).map_err(|e| Error::io(dest, e))?;
            temp.armed = false;
        }
        Existing::Keep => match std::fs::hard_link(&temp.path, dest) {
            Ok(()) => {} // the temp file is removed on drop; `dest` keeps the data
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::io(dest, e));
            }
            Err(_) => {
                if dest.exists() {
                    return Err(Error::io(dest, std::io::Error::from(std::io::ErrorKind::AlreadyExists)));
                }
                std::fs::rename(&temp.path, dest).map_err(|e| Error::io(dest, e))?;
                temp.armed = false;
            }
        },
    }
    drop(temp);
    sync_dir(&parent_dir(dest));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect()
    }

    #[test]
    fn replace_and_keep() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        write_atomic(&p, b"one", Existing::Keep).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let err = write_atomic(&p, b"two", Existing::Keep).unwrap_err();
        assert!(matches!(err, Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists));
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"three", Existing::Replace).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"three");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn temp_names_are_short_whatever_the_destination() {
        let a = temp_name();
        assert!(a.starts_with(".lantern-") && a.ends_with(".tmp"), "{a}");
        assert!(a.len() <= 45, "{a}");
        assert_ne!(a, temp_name());
    }

    #[test]
    fn a_250_byte_name_is_written() {
        let dir = tempfile::tempdir().unwrap();
        // 246 + ".png" = 250 bytes: legal, and formerly pushed over 255 by the temp name.
        let name = format!("{}.png", "a".repeat(246));
        assert_eq!(name.len(), 250);
        let p = dir.path().join(&name);
        write_atomic(&p, b"one", Existing::Keep).unwrap();
        write_atomic(&p, b"two", Existing::Replace).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // The longest legal name, multi-byte: 85 × 3 bytes = 255.
        let p = dir.path().join("狐".repeat(85));
        write_atomic(&p, b"fox", Existing::Keep).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"fox");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn missing_folder_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/folder/a.png");
        assert!(write_atomic(&p, b"x", Existing::Replace).is_err());
        assert!(!dir.path().join("no").exists());
    }
}
