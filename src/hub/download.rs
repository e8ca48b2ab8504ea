//! Downloading a model repo into the Hugging Face cache, the way `huggingface_hub` does it, so
//! Python tools see our downloads and we see theirs.
//!
//! 1. Plan: `GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true` gives the commit and,
//!    per file, its size and (LFS files) sha256. The files are the catalog's exact list, or the
//!    diffusers components picked from the listing ([`select_diffusers_files`]).
//! 2. Refuse early, with numbers, when the disk cannot hold what is still missing.
//! 3. Per file: `GET {endpoint}/{repo}/resolve/{commit}/{path}` into `blobs/<id>.incomplete`,
//!    continuing an earlier partial file with `Range: bytes=N-`; size and sha256 are checked
//!    before the blob is renamed into place and linked from `snapshots/<commit>/<path>`. A file
//!    whose content is wrong is deleted and reported, never left in the snapshot.
//!
//! Cancellation is a shared flag checked between every chunk; what was fetched so far stays in
//! the `.incomplete` file for the next run. Progress goes to a callback (or a channel, with
//! [`spawn_download`]).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::catalog::{Catalog, CatalogEntry, DIFFUSERS_COMPONENTS};
use super::hf_cache::{self, RepoCache};
use super::http::{Http, endpoint_url};
use crate::error::{Error, Failure, Kind, Result};
use crate::format::ByteSize;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
const CHUNK: usize = 256 * 1024;
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Where and how to talk to the Hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// `HF_ENDPOINT`, without a trailing slash.
    pub endpoint: String,
    /// `HF_TOKEN`, sent as `Authorization: Bearer` to the endpoint's host.
    pub token: Option<String>,
    /// The hub cache folder (see [`hf_cache::default_cache_dir`]).
    pub cache_dir: PathBuf,
    /// How long to wait for a connection: short, so offline is reported at once.
    pub connect_timeout: Duration,
    /// How long a read may stall before the download fails (and can be resumed).
    pub read_timeout: Duration,
}

impl HubConfig {
    /// From `HF_ENDPOINT`, `HF_TOKEN` and the cache variables.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// [`HubConfig::from_env`] with the environment passed in.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |key: &str| lookup(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let endpoint = get("HF_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
            .trim_end_matches('/')
            .to_owned();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::invalid(format!(
                "HF_ENDPOINT `{endpoint}` must start with http:// or https://"
            )));
        }
        let token = get("HF_TOKEN").or_else(|| get("HUGGING_FACE_HUB_TOKEN"));
        let cache_dir = hf_cache::cache_dir_from(|key| get(key).map(PathBuf::from)).ok_or_else(|| {
            Error::invalid("cannot find the home folder for the Hugging Face cache; set HF_HUB_CACHE")
        })?;
        Ok(HubConfig {
            endpoint,
            token,
            cache_dir,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
        })
    }
}

/// Which files of the repo to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSelection {
    /// Exactly these paths (a catalog entry's list).
    Exact(Vec<String>),
    /// The diffusers components found in the repo listing ([`select_diffusers_files`]).
    Diffusers,
}

/// What to download.
#[derive(Debug, Clone)]
pub struct DownloadRequest {
    pub repo_id: String,
    /// A branch, tag or commit; `main` normally.
    pub revision: String,
    pub files: FileSelection,
    /// Bytes that must stay free after the download (0: just fit).
    pub keep_free: u64,
}

impl DownloadRequest {
    pub fn from_catalog(entry: &CatalogEntry) -> Self {
        DownloadRequest {
            repo_id: entry.repo.clone(),
            revision: entry.revision.clone(),
            files: FileSelection::Exact(entry.files.clone()),
            keep_free: 0,
        }
    }

    pub fn repo(repo_id: &str) -> Self {
        DownloadRequest {
            repo_id: repo_id.to_owned(),
            revision: "main".to_owned(),
            files: FileSelection::Diffusers,
            keep_free: 0,
        }
    }

    /// A catalog id or repo id (`sd-turbo`, `stabilityai/sd-turbo`) or any other repo id.
    pub fn resolve(name_or_repo: &str, catalog: &Catalog) -> Result<Self> {
        if let Some(entry) = catalog.find(name_or_repo) {
            return Ok(Self::from_catalog(entry));
        }
        let repo = name_or_repo.trim();
        hf_cache::validate_repo_id(repo).map_err(|_| {
            let ids: Vec<&str> = catalog.models.iter().map(|m| m.id.as_str()).collect();
            Error::invalid(format!(
                "`{repo}` is neither a known model ({}) nor a repo id like `org/name`",
                ids.join(", ")
            ))
        })?;
        Ok(Self::repo(repo))
    }
}

/// A shared cancel switch: cheap to clone, checked between every chunk.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps an existing flag (e.g. one a Ctrl+C handler sets).
    pub fn from_arc(flag: Arc<AtomicBool>) -> Self {
        CancelFlag(flag)
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Overall and per-file progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub file: String,
    pub file_done: u64,
    pub file_size: u64,
    /// Bytes in place for the whole download, including files present before this run.
    pub done: u64,
    pub total: u64,
    /// Average speed of this run, bytes per second.
    pub bytes_per_sec: f64,
    /// Time left at that speed; `None` until there is a speed.
    pub eta: Option<Duration>,
}

impl Progress {
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.done as f64 / self.total as f64
        }
    }
}

/// What a download reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum DownloadEvent {
    Planned {
        repo_id: String,
        commit: String,
        files: usize,
        total: u64,
        /// Bytes already on disk (complete files and partial ones to resume).
        already: u64,
        /// Files the Hub gives no sha256 for (not stored in LFS: configs, tokenizer files):
        /// these are checked by their size only.
        size_only: usize,
    },
    FileStarted {
        path: String,
        size: u64,
        /// Non-zero when continuing a partial file.
        resume_from: u64,
    },
    Progress(Progress),
    FileDone {
        path: String,
        /// Already present; nothing was fetched.
        skipped: bool,
    },
    Finished {
        snapshot: PathBuf,
    },
    /// Only from [`spawn_download`], which has no other way to report the end. The kind says
    /// what went wrong (offline, not found, checksum, …), the message says it in words.
    Failed(Failure),
    /// Only from [`spawn_download`].
    Cancelled,
}

/// One file in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub path: String,
    pub size: u64,
    /// LFS files only; others are checked by size.
    pub sha256: Option<String>,
    /// The blob's name in the cache: the sha256 for LFS files, the git blob id otherwise.
    pub blob_id: String,
}

#[derive(Debug, Deserialize)]
struct RepoInfo {
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Debug, Deserialize)]
struct Sibling {
    rfilename: String,
    size: Option<u64>,
    #[serde(rename = "blobId")]
    blob_id: Option<String>,
    lfs: Option<Lfs>,
}

#[derive(Debug, Deserialize)]
struct Lfs {
    sha256: String,
    size: u64,
}

/// Picks the files a diffusers pipeline needs from a repo listing: `model_index.json`, each
/// component's JSON/text files and its `.safetensors` weights, the `fp16` variant when the
/// component has one, else the plain files (never `non_ema` or other variants). Pickles, ONNX,
/// root-level checkpoints and the safety checker are left out.
pub fn select_diffusers_files<'a>(listing: impl IntoIterator<Item = &'a str>, repo: &str) -> Result<Vec<String>> {
    let listing: Vec<&str> = listing.into_iter().collect();
    if !listing.contains(&"model_index.json") {
        return Err(Error::download(
            Kind::Model,
            format!("{repo} is not a diffusers pipeline (it has no model_index.json)"),
        ));
    }
    let mut out = vec!["model_index.json".to_owned()];
    for component in DIFFUSERS_COMPONENTS {
        let files: Vec<&str> = listing
            .iter()
            .filter_map(|f| f.strip_prefix(component)?.strip_prefix('/'))
            .filter(|name| !name.contains('/'))
            .collect();
        if files.is_empty() {
            continue;
        }
        let weights: Vec<&str> = files.iter().copied().filter(|f| f.ends_with(".safetensors")).collect();
        let has_fp16 = weights.iter().any(|f| weight_variant(f) == Some("fp16"));
        let wanted = if has_fp16 { Some("fp16") } else { None };
        let needs_weights = !matches!(component, "scheduler" | "tokenizer" | "tokenizer_2");
        let mut picked_weights = 0;
        for name in files {
            let keep = if name.ends_with(".safetensors") {
                weight_variant(name) == wanted
            } else if name.contains(".safetensors.index") {
                index_variant(name) == wanted
            } else {
                name.ends_with(".json") || name.ends_with(".txt")
            };
            if keep {
                picked_weights += usize::from(name.ends_with(".safetensors"));
                out.push(format!("{component}/{name}"));
            }
        }
        if needs_weights && picked_weights == 0 {
            return Err(Error::download(
                Kind::Model,
                format!("{repo}: {component}/ has no .safetensors weights (pickle .bin files are not downloaded)"),
            ));
        }
    }
    Ok(out)
}

/// `model.fp16.safetensors` → fp16, `diffusion_pytorch_model-00001-of-00002.fp16.safetensors` →
/// fp16, `model.safetensors` → none.
fn weight_variant(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".safetensors")?;
    stem.rsplit_once('.').map(|(_, v)| v)
}

/// `x.safetensors.index.fp16.json` → fp16, `x.safetensors.index.json` → none.
fn index_variant(name: &str) -> Option<&str> {
    let (_, rest) = name.split_once(".safetensors.index")?;
    let v = rest.strip_suffix(".json")?.trim_start_matches('.');
    (!v.is_empty()).then_some(v)
}

/// Downloads `request` into the cache and returns the snapshot folder. Blocks; call it from a
/// background thread (or use [`spawn_download`]).
pub fn download(
    config: &HubConfig,
    request: &DownloadRequest,
    cancel: &CancelFlag,
    on_event: &mut dyn FnMut(DownloadEvent),
) -> Result<PathBuf> {
    hf_cache::validate_repo_id(&request.repo_id)?;
    let http = Http::new(config.connect_timeout, config.read_timeout, config.token.clone());
    let repo = RepoCache::new(&config.cache_dir, &request.repo_id);
    let (commit, files) = plan(config, &http, request)?;
    check_cancel(cancel)?;

    let snapshot = repo.snapshot_dir(&commit);
    fs::create_dir_all(&snapshot).map_err(|e| Error::io(&snapshot, e))?;
    fs::create_dir_all(repo.blobs_dir()).map_err(|e| Error::io(repo.blobs_dir(), e))?;
    repo.write_ref(&request.revision, &commit)?;

    let total: u64 = files.iter().map(|f| f.size).sum();
    let already: u64 = files.iter().map(|f| bytes_present(&repo, &snapshot, f)).sum();
    check_disk_space(&config.cache_dir, total - already.min(total), request.keep_free)?;
    on_event(DownloadEvent::Planned {
        repo_id: request.repo_id.clone(),
        commit: commit.clone(),
        files: files.len(),
        total,
        already,
        size_only: files.iter().filter(|f| f.sha256.is_none()).count(),
    });

    let mut run = Run {
        http: &http,
        config,
        repo: &repo,
        commit: &commit,
        cancel,
        on_event,
        total,
        done: 0,
        fetched: 0,
        started: Instant::now(),
        last_report: None,
    };
    for file in &files {
        check_cancel(cancel)?;
        run.fetch(file)?;
    }
    tracing::info!(repo = request.repo_id, commit, "download complete");
    (run.on_event)(DownloadEvent::Finished {
        snapshot: snapshot.clone(),
    });
    Ok(snapshot)
}

fn check_cancel(cancel: &CancelFlag) -> Result<()> {
    if cancel.is_cancelled() {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

/// Asks the API for the commit and the file list, and keeps the requested files.
fn plan(config: &HubConfig, http: &Http, request: &DownloadRequest) -> Result<(String, Vec<PlannedFile>)> {
    let (org, name) = request
        .repo_id
        .split_once('/')
        .ok_or_else(|| Error::invalid(format!("`{}` is not a repo id", request.repo_id)))?;
    let url = endpoint_url(
        &config.endpoint,
        &["api", "models", org, name, "revision", &request.revision],
        Some("blobs=true"),
    )?;
    tracing::debug!(url, "planning download");
    let response = http.get(&url, None)?;
    if response.status != 200 {
        return Err(response.status_error(&format!("{} (revision {})", request.repo_id, request.revision)));
    }
    let info: RepoInfo = response.into_json()?;
    let commit = info
        .sha
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
        .ok_or_else(|| {
            Error::download(
                Kind::Network,
                format!(
                    "{}: the server did not say which commit `{}` is",
                    request.repo_id, request.revision
                ),
            )
        })?;

    let wanted = match &request.files {
        FileSelection::Exact(files) => files.clone(),
        FileSelection::Diffusers => {
            select_diffusers_files(info.siblings.iter().map(|s| s.rfilename.as_str()), &request.repo_id)?
        }
    };
    let mut files = Vec::with_capacity(wanted.len());
    for path in wanted {
        hf_cache::validate_repo_path(&path)?;
        let sibling = info.siblings.iter().find(|s| s.rfilename == path).ok_or_else(|| {
            Error::download(
                Kind::NotFound,
                format!(
                    "{} has no file `{path}` at revision {} ({})",
                    request.repo_id,
                    request.revision,
                    &commit[..commit.len().min(12)]
                ),
            )
        })?;
        let (size, sha256, blob_id) = match (&sibling.lfs, sibling.size, &sibling.blob_id) {
            (Some(lfs), _, _) => (
                lfs.size,
                Some(lfs.sha256.to_ascii_lowercase()),
                lfs.sha256.to_ascii_lowercase(),
            ),
            (None, Some(size), Some(blob)) => (size, None, blob.clone()),
            _ => {
                return Err(Error::download(
                    Kind::Network,
                    format!(
                        "{}: the server gave no size or blob id for `{path}` (a mirror without ?blobs=true support?)",
                        request.repo_id
                    ),
                ));
            }
        };
        if !blob_id.chars().all(|c| c.is_ascii_alphanumeric()) || blob_id.is_empty() {
            return Err(Error::download(
                Kind::Network,
                format!("{}: odd blob id for `{path}`", request.repo_id),
            ));
        }
        files.push(PlannedFile {
            path,
            size,
            sha256,
            blob_id,
        });
    }
    Ok((commit, files))
}

/// Bytes of `file` already on disk: all of it when its snapshot link or blob is complete, the
/// partial length when an `.incomplete` file waits to be resumed.
fn bytes_present(repo: &RepoCache, snapshot: &Path, file: &PlannedFile) -> u64 {
    let len = |p: &Path| fs::metadata(p).ok().filter(|m| m.is_file()).map(|m| m.len());
    if len(&snapshot.join(&file.path)) == Some(file.size) || len(&repo.blob_path(&file.blob_id)) == Some(file.size) {
        return file.size;
    }
    len(&repo.incomplete_path(&file.blob_id))
        .filter(|&n| n <= file.size)
        .unwrap_or(0)
}

fn check_disk_space(dir: &Path, needed: u64, keep_free: u64) -> Result<()> {
    let Some(available) = free_space(dir) else {
        tracing::debug!(dir = %dir.display(), "free space unknown; not checked");
        return Ok(());
    };
    if needed.saturating_add(keep_free) > available {
        return Err(Error::DiskSpace {
            path: dir.to_path_buf(),
            needed: ByteSize(needed.saturating_add(keep_free)),
            available: ByteSize(available),
        });
    }
    Ok(())
}

/// Free bytes for an unprivileged user on the file system holding `dir` (or its nearest
/// existing ancestor, since the download folder may not exist yet); `None` when unknown.
#[cfg(any(unix, windows))]
pub fn free_space(dir: &Path) -> Option<u64> {
    let existing = dir.ancestors().find(|p| p.exists())?;
    fs4::available_space(existing).ok()
}

#[cfg(not(any(unix, windows)))]
pub fn free_space(_dir: &Path) -> Option<u64> {
    None
}

/// The state of one download run.
struct Run<'a> {
    http: &'a Http,
    config: &'a HubConfig,
    repo: &'a RepoCache,
    commit: &'a str,
    cancel: &'a CancelFlag,
    on_event: &'a mut dyn FnMut(DownloadEvent),
    total: u64,
    /// Bytes in place, including files present before this run.
    done: u64,
    /// Bytes fetched over the network in this run (for the speed).
    fetched: u64,
    started: Instant,
    last_report: Option<Instant>,
}

impl Run<'_> {
    fn fetch(&mut self, file: &PlannedFile) -> Result<()> {
        let snapshot_file = self.repo.snapshot_dir(self.commit).join(&file.path);
        let blob = self.repo.blob_path(&file.blob_id);
        let len = |p: &Path| fs::metadata(p).ok().filter(|m| m.is_file()).map(|m| m.len());

        if len(&snapshot_file) == Some(file.size) {
            return self.skip(file);
        }
        if len(&blob) == Some(file.size) {
            hf_cache::link_blob(&blob, &snapshot_file, &file.path, &file.blob_id)?;
            return self.skip(file);
        }

        let partial = self.repo.incomplete_path(&file.blob_id);
        let mut offset = len(&partial).unwrap_or(0);
        if offset > file.size {
            offset = 0;
        }
        let mut hasher = Sha256::new();
        if offset > 0 && file.sha256.is_some() {
            hash_prefix(&partial, offset, &mut hasher, self.cancel)?;
        }
        (self.on_event)(DownloadEvent::FileStarted {
            path: file.path.clone(),
            size: file.size,
            resume_from: offset,
        });
        self.done += offset;

        if offset < file.size {
            offset = self.stream(file, &partial, offset, &mut hasher)?;
        }
        self.finish(file, &partial, offset, hasher, &blob, &snapshot_file)
    }

    fn skip(&mut self, file: &PlannedFile) -> Result<()> {
        self.done += file.size;
        (self.on_event)(DownloadEvent::FileDone {
            path: file.path.clone(),
            skipped: true,
        });
        Ok(())
    }

    /// Fetches from `offset` to the end into `partial`; returns the final length.
    fn stream(&mut self, file: &PlannedFile, partial: &Path, mut offset: u64, hasher: &mut Sha256) -> Result<u64> {
        let (org, name) = self.repo.repo_id.split_once('/').unwrap_or(("", ""));
        let mut segments = vec![org, name, "resolve", self.commit];
        segments.extend(file.path.split('/'));
        let url = endpoint_url(&self.config.endpoint, &segments, None)?;
        let what = format!("{} {}", self.repo.repo_id, file.path);

        let mut response = self.http.get(&url, (offset > 0).then_some(offset))?;
        if response.status == 416 && offset > 0 {
            // Our partial file does not fit what the server has: start over.
            tracing::warn!(file = file.path, "range not satisfiable; restarting the file");
            self.done -= offset;
            offset = 0;
            *hasher = Sha256::new();
            response = self.http.get(&url, None)?;
        }
        match response.status {
            206 if offset > 0 => {
                let expected = format!("bytes {offset}-");
                if !response.content_range.as_deref().unwrap_or("").starts_with(&expected) {
                    return Err(Error::download(
                        Kind::Network,
                        format!(
                            "{what}: the server resumed at the wrong place ({:?})",
                            response.content_range
                        ),
                    ));
                }
            }
            200 | 206 => {
                if offset > 0 {
                    tracing::info!(
                        file = file.path,
                        "server ignored the Range request; restarting the file"
                    );
                    self.done -= offset;
                    offset = 0;
                    *hasher = Sha256::new();
                }
            }
            _ => return Err(response.status_error(&what)),
        }
        if let Some(commit) = &response.repo_commit
            && commit != self.commit
        {
            tracing::warn!(
                file = file.path,
                commit,
                expected = self.commit,
                "X-Repo-Commit differs"
            );
        }
        if let Some(etag) = &response.etag
            && *etag != file.blob_id
        {
            tracing::warn!(
                file = file.path,
                etag,
                blob = file.blob_id,
                "ETag differs from the API's blob id"
            );
        }

        let mut out = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(offset == 0)
            .append(offset > 0)
            .open(partial)
            .map_err(|e| Error::io(partial, e))?;
        let mut reader = response.into_reader();
        let mut buf = vec![0u8; CHUNK];
        let mut file_done = offset;
        loop {
            if self.cancel.is_cancelled() {
                out.flush().map_err(|e| Error::io(partial, e))?;
                return Err(Error::Cancelled);
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = out.flush();
                    return Err(Error::network(format!(
                        "{what}: connection lost after {} of {} ({}); run the download again to resume",
                        ByteSize(file_done),
                        ByteSize(file.size),
                        e.to_string().replace('\n', " ")
                    )));
                }
            };
            if file_done + n as u64 > file.size {
                drop(out);
                let _ = fs::remove_file(partial);
                return Err(Error::download(
                    Kind::Checksum,
                    format!(
                        "{what}: the server sent more than the expected {} bytes; the partial file was deleted",
                        file.size
                    ),
                ));
            }
            out.write_all(&buf[..n]).map_err(|e| Error::io(partial, e))?;
            if file.sha256.is_some() {
                hasher.update(&buf[..n]);
            }
            file_done += n as u64;
            self.done += n as u64;
            self.fetched += n as u64;
            self.report(file, file_done, false);
        }
        out.sync_all().map_err(|e| Error::io(partial, e))?;
        if file_done < file.size {
            return Err(Error::network(format!(
                "{what}: the connection closed after {} of {}; run the download again to resume",
                ByteSize(file_done),
                ByteSize(file.size)
            )));
        }
        Ok(file_done)
    }

    /// Checks size and hash, then moves the blob into place and links it from the snapshot.
    fn finish(
        &mut self,
        file: &PlannedFile,
        partial: &Path,
        len: u64,
        hasher: Sha256,
        blob: &Path,
        snapshot_file: &Path,
    ) -> Result<()> {
        let what = format!("{} {}", self.repo.repo_id, file.path);
        if len != file.size {
            let _ = fs::remove_file(partial);
            return Err(Error::download(
                Kind::Checksum,
                format!("{what}: got {len} bytes, expected {}; the file was deleted", file.size),
            ));
        }
        if let Some(expected) = &file.sha256 {
            let actual = hex(&hasher.finalize());
            if &actual != expected {
                let _ = fs::remove_file(partial);
                return Err(Error::download(
                    Kind::Checksum,
                    format!(
                        "{what}: content does not match its sha256 (expected {expected}, got {actual}); the corrupt file was deleted, run the download again"
                    ),
                ));
            }
        }
        fs::rename(partial, blob).map_err(|e| Error::io(blob, e))?;
        hf_cache::link_blob(blob, snapshot_file, &file.path, &file.blob_id)?;
        self.report(file, len, true);
        (self.on_event)(DownloadEvent::FileDone {
            path: file.path.clone(),
            skipped: false,
        });
        Ok(())
    }

    fn report(&mut self, file: &PlannedFile, file_done: u64, force: bool) {
        let now = Instant::now();
        if !force && self.last_report.is_some_and(|t| now - t < PROGRESS_EVERY) {
            return;
        }
        self.last_report = Some(now);
        let secs = (now - self.started).as_secs_f64();
        let bytes_per_sec = if secs > 0.0 { self.fetched as f64 / secs } else { 0.0 };
        let left = self.total.saturating_sub(self.done);
        let eta = (bytes_per_sec > 0.0).then(|| Duration::from_secs_f64(left as f64 / bytes_per_sec));
        (self.on_event)(DownloadEvent::Progress(Progress {
            file: file.path.clone(),
            file_done,
            file_size: file.size,
            done: self.done,
            total: self.total,
            bytes_per_sec,
            eta,
        }));
    }
}

fn hash_prefix(path: &Path, len: u64, hasher: &mut Sha256, cancel: &CancelFlag) -> Result<()> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?.take(len);
    let mut buf = vec![0u8; CHUNK];
    loop {
        check_cancel(cancel)?;
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A download running on its own thread: events arrive on `events`, `cancel()` stops it at the
/// next chunk (the partial file is kept for resuming).
pub struct DownloadHandle {
    pub events: mpsc::Receiver<DownloadEvent>,
    cancel: CancelFlag,
    thread: Option<JoinHandle<Result<PathBuf>>>,
}

impl DownloadHandle {
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    pub fn cancel_flag(&self) -> CancelFlag {
        self.cancel.clone()
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the end; the snapshot folder on success.
    pub fn join(mut self) -> Result<PathBuf> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(Error::download(
                Kind::Internal,
                "the download thread stopped unexpectedly",
            )),
        }
    }
}

/// Starts [`download`] on a background thread. The last event is `Finished`, `Failed` or
/// `Cancelled`.
pub fn spawn_download(config: HubConfig, request: DownloadRequest) -> DownloadHandle {
    let (tx, rx) = mpsc::channel();
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    let thread = std::thread::Builder::new()
        .name(format!("download {}", request.repo_id))
        .spawn(move || {
            let mut send = |event| {
                let _ = tx.send(event);
            };
            let result = download(&config, &request, &flag, &mut send);
            match &result {
                Ok(_) => {}
                Err(Error::Cancelled) => send(DownloadEvent::Cancelled),
                Err(e) => send(DownloadEvent::Failed(Failure::from(e))),
            }
            result
        });
    let thread = match thread {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!("cannot start the download thread: {e}");
            None
        }
    };
    DownloadHandle {
        events: rx,
        cancel,
        thread,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffusers_selection_prefers_fp16_and_skips_pickles_and_extras() {
        let listing = [
            ".gitattributes",
            "README.md",
            "model_index.json",
            "v1-5-pruned-emaonly.safetensors",
            "v1-5-pruned.ckpt",
            "feature_extractor/preprocessor_config.json",
            "safety_checker/config.json",
            "safety_checker/model.safetensors",
            "scheduler/scheduler_config.json",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
            "text_encoder/model.fp16.safetensors",
            "text_encoder/pytorch_model.bin",
            "tokenizer/merges.txt",
            "tokenizer/vocab.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "unet/diffusion_pytorch_model.non_ema.safetensors",
            "unet/diffusion_pytorch_model.fp16.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors",
            "vae_decoder/model.onnx",
        ];
        let picked = select_diffusers_files(listing, "x/y").unwrap();
        assert_eq!(
            picked,
            [
                "model_index.json",
                "scheduler/scheduler_config.json",
                "text_encoder/config.json",
                "text_encoder/model.fp16.safetensors",
                "tokenizer/merges.txt",
                "tokenizer/vocab.json",
                "unet/config.json",
                "unet/diffusion_pytorch_model.fp16.safetensors",
                "vae/config.json",
                "vae/diffusion_pytorch_model.safetensors",
            ]
        );
    }

    #[test]
    fn diffusers_selection_handles_shards_and_refuses_pickle_only_components() {
        let sharded = [
            "model_index.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors.index.json",
            "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
            "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
            "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
            "unet/diffusion_pytorch_model-00001-of-00002.fp16.safetensors",
            "unet/diffusion_pytorch_model-00002-of-00002.fp16.safetensors",
        ];
        let picked = select_diffusers_files(sharded, "x/y").unwrap();
        assert!(picked.contains(&"unet/diffusion_pytorch_model.safetensors.index.fp16.json".to_string()));
        assert!(picked.contains(&"unet/diffusion_pytorch_model-00002-of-00002.fp16.safetensors".to_string()));
        assert!(!picked.contains(&"unet/diffusion_pytorch_model.safetensors.index.json".to_string()));
        assert_eq!(picked.len(), 5);

        let pickles = [
            "model_index.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.bin",
        ];
        let err = select_diffusers_files(pickles, "x/y").unwrap_err().to_string();
        assert!(err.contains("unet/") && err.contains(".safetensors"), "{err}");

        let not_diffusers = ["sd_xl_turbo_1.0.safetensors"];
        assert!(select_diffusers_files(not_diffusers, "x/y").is_err());
    }

    #[test]
    fn config_reads_endpoint_token_and_cache_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_string())
        };
        let c = HubConfig::from_lookup(env(&[
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_TOKEN", "hf_abc"),
            ("HF_HOME", "/tmp/hfhome"),
        ]))
        .unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:9");
        assert_eq!(c.token.as_deref(), Some("hf_abc"));
        assert_eq!(c.cache_dir, PathBuf::from("/tmp/hfhome/hub"));

        let d = HubConfig::from_lookup(env(&[("HF_HUB_CACHE", "/c"), ("HF_TOKEN", "  ")])).unwrap();
        assert_eq!(d.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(d.token, None);
        assert!(HubConfig::from_lookup(env(&[("HF_ENDPOINT", "ftp://x")])).is_err());
    }

    #[test]
    fn catalog_names_and_repo_ids_resolve() {
        let catalog = Catalog::builtin().unwrap();
        let r = DownloadRequest::resolve("sd-turbo", &catalog).unwrap();
        assert_eq!(r.repo_id, "stabilityai/sd-turbo");
        assert!(matches!(r.files, FileSelection::Exact(ref f) if f.len() == 12));
        let r = DownloadRequest::resolve("someone/custom-sd", &catalog).unwrap();
        assert_eq!(r.files, FileSelection::Diffusers);
        let err = DownloadRequest::resolve("sd-turbo-xl", &catalog)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sd-turbo, sd15"), "{err}");
    }
}
