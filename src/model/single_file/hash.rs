//! A1111's model hash: the first 10 hex digits of the whole file's SHA-256 (its "new-style"
//! hash, the one civitai shows). Hashing gigabytes takes seconds, so each result is kept in
//! `model-hashes.json` in the data folder, keyed by the file's path, size and modification
//! time; a changed file is hashed again. The cache is best-effort: if it cannot be read or
//! written the hash is simply computed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
struct Entry {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

fn cache_file() -> PathBuf {
    crate::paths::DataDir::from_env().root().join("model-hashes.json")
}

fn stamp(path: &Path) -> Result<(u64, u128)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok((meta.len(), mtime))
}

/// The full SHA-256 of `path`, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> Result<String> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    sha256_rest(path, f)
}

/// The SHA-256 of a safetensors file's tensor data, its header skipped: A1111's hash for
/// LoRA files (from the "addnet" extension), so editing the metadata keeps the hash.
pub fn sha256_safetensors_data(path: &Path) -> Result<String> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| Error::io(path, e))?;
    let skip = u64::from_le_bytes(len).saturating_add(8);
    f.seek(SeekFrom::Start(skip)).map_err(|e| Error::io(path, e))?;
    sha256_rest(path, f)
}

fn sha256_rest(path: &Path, mut f: std::fs::File) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A1111's `Model hash:` of `path` if the file was hashed before and has not changed since;
/// never reads the file itself (restoring a picture must not hash gigabytes).
pub fn cached_model_hash(path: &Path) -> Option<String> {
    let entries = read_cache(&cache_file());
    let sha256 = cached_entry(&entries, &cache_key(path), stamp(path).ok()?)?;
    Some(sha256[..10].to_string())
}

fn cache_key(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

fn read_cache(cache: &Path) -> BTreeMap<String, Entry> {
    std::fs::read(cache)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The remembered SHA-256 of the file under `key`, if its size and time still match.
fn cached_entry(entries: &BTreeMap<String, Entry>, key: &str, (size, mtime_ns): (u64, u128)) -> Option<String> {
    entries
        .get(key)
        .filter(|e| e.size == size && e.mtime_ns == mtime_ns && e.sha256.len() == 64)
        .map(|e| e.sha256.clone())
}

/// A1111's `Model hash:` of `path` (10 hex digits), from the cache when the file is unchanged.
pub fn model_hash(path: &Path) -> Result<String> {
    Ok(sha256_cached(path)?[..10].to_string())
}

/// A1111's `Lora hashes` entry for a LoRA file: 12 hex digits of the SHA-256 of its tensor
/// data ([`sha256_safetensors_data`]), from the cache when the file is unchanged.
pub fn lora_hash(path: &Path) -> Result<String> {
    let key = format!("data:{}", cache_key(path));
    Ok(cached_with(path, key, sha256_safetensors_data)?[..12].to_string())
}

/// The file's full SHA-256, from the cache when the file is unchanged.
pub fn sha256_cached(path: &Path) -> Result<String> {
    cached_with(path, cache_key(path), sha256_file)
}

/// `hash(path)`, remembered under `key` with the file's size and time.
fn cached_with(path: &Path, key: String, hash: fn(&Path) -> Result<String>) -> Result<String> {
    let (size, mtime_ns) = stamp(path)?;
    let cache = cache_file();
    let mut entries = read_cache(&cache);
    if let Some(sha256) = cached_entry(&entries, &key, (size, mtime_ns)) {
        return Ok(sha256);
    }
    let sha256 = hash(path)?;
    // Only a file that did not change while it was read is remembered.
    if stamp(path)? == (size, mtime_ns) {
        entries.insert(
            key,
            Entry {
                size,
                mtime_ns,
                sha256: sha256.clone(),
            },
        );
        if let Ok(text) = serde_json::to_vec_pretty(&entries)
            && let Some(dir) = cache.parent()
            && std::fs::create_dir_all(dir).is_ok()
        {
            let tmp = cache.with_extension(format!("json.{}.tmp", std::process::id()));
            if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, &cache).is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
        }
    }
    Ok(sha256)
}
