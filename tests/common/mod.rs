//! Test helpers: a fake Hugging Face Hub on 127.0.0.1 serving a fixture pipeline as a repo, and
//! a builder for fake cache folders laid out like huggingface_hub's.
//!
//! The server speaks just enough HTTP/1.1 (one request per connection, `Connection: close`) to
//! answer the two endpoints Lantern uses, the way the real Hub does: the revision API with
//! `?blobs=true`, and `resolve/` with `X-Repo-Commit`, `ETag`/`X-Linked-Etag`, a 302 to a CDN
//! path for LFS files, and `Range` → 206. Knobs make it misbehave on purpose.

#![allow(dead_code)]

pub mod gui;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};

pub const REPO_ID: &str = "lantern-test/sd1-tiny";
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Every file under `dir` as (repo path with `/`, content), sorted.
pub fn fixture_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap();
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[derive(Clone)]
pub struct RepoFile {
    pub path: String,
    pub content: Vec<u8>,
    pub sha256: String,
    pub lfs: bool,
    /// What the Hub calls the git blob id (any stable hex string works for the client).
    pub blob_id: String,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
    /// The host an absolute-URI request named (`GET http://host/path`): the request came
    /// through us acting as an HTTP proxy.
    pub proxied_for: Option<String>,
}

#[derive(Default)]
pub struct Behaviour {
    /// Answer `resolve/` for LFS files with a 302 to `/cdn/<sha256>`, like the real Hub.
    pub redirect_lfs: bool,
    /// Close the connection after this many body bytes of the file, the first time only.
    pub drop_after: HashMap<String, u64>,
    /// Serve these files with one byte flipped (the API still reports the true sha256).
    pub corrupt: HashSet<String>,
    /// Send these files slowly (64 KiB every 20 ms) so a client can cancel midway.
    pub slow: HashSet<String>,
    /// Refuse (401) requests without `Authorization: Bearer <token>`.
    pub required_token: Option<String>,
}

struct State {
    /// The one repo this hub serves.
    repo_id: String,
    files: Vec<RepoFile>,
    behaviour: Behaviour,
    seen: Vec<Seen>,
}

pub struct FakeHub {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeHub {
    /// The sd1-tiny fixture as `lantern-test/sd1-tiny`, plus files a real SD repo has that a
    /// download must not fetch (root checkpoint, pickle, safety checker, README).
    pub fn sd1_tiny(behaviour: Behaviour) -> FakeHub {
        let mut files: Vec<(String, Vec<u8>)> = fixture_files(&fixture_dir("sd1-tiny"));
        files.push(("README.md".into(), b"# tiny".to_vec()));
        files.push(("v1-5-pruned-emaonly.safetensors".into(), vec![7; 1000]));
        files.push(("unet/diffusion_pytorch_model.bin".into(), vec![8; 1000]));
        files.push(("safety_checker/config.json".into(), b"{}".to_vec()));
        files.push(("safety_checker/model.safetensors".into(), vec![9; 1000]));
        FakeHub::start(files, behaviour)
    }

    pub fn start(files: Vec<(String, Vec<u8>)>, behaviour: Behaviour) -> FakeHub {
        FakeHub::start_as(REPO_ID, files, behaviour)
    }

    /// `files` served as the repo `repo_id` (a catalog entry's own repo).
    pub fn start_as(repo_id: &str, files: Vec<(String, Vec<u8>)>, behaviour: Behaviour) -> FakeHub {
        let files = files
            .into_iter()
            .map(|(path, content)| {
                let sha256 = sha256_hex(&content);
                RepoFile {
                    lfs: path.ends_with(".safetensors") || path.ends_with(".bin"),
                    blob_id: sha256_hex(format!("blob {path}").as_bytes())[..40].to_owned(),
                    path,
                    content,
                    sha256,
                }
            })
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            repo_id: repo_id.to_owned(),
            files,
            behaviour,
            seen: Vec::new(),
        }));
        let shared = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                thread::spawn(move || {
                    let _ = handle(stream, &state);
                });
            }
        });
        FakeHub { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn files(&self) -> Vec<RepoFile> {
        self.state.lock().unwrap().files.clone()
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut target = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    // As an HTTP proxy: `GET http://host/path` is answered as `GET /path` for `host`.
    let mut proxied_for = None;
    if let Some(rest) = target.strip_prefix("http://") {
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        proxied_for = Some(host.to_owned());
        target = if path.is_empty() { "/".into() } else { path.to_owned() };
    }
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let path = target.split('?').next().unwrap_or("").to_owned();
    let range = headers.get("range").cloned();
    let authorization = headers.get("authorization").cloned();
    let mut out = stream;

    let mut guard = state.lock().unwrap();
    guard.seen.push(Seen {
        path: target.clone(),
        range: range.clone(),
        authorization: authorization.clone(),
        proxied_for,
    });
    if let Some(token) = &guard.behaviour.required_token
        && !path.starts_with("/cdn/")
        && authorization.as_deref() != Some(&format!("Bearer {token}"))
    {
        drop(guard);
        return respond(
            &mut out,
            "401 Unauthorized",
            &[],
            b"{\"error\":\"Invalid credentials\"}",
        );
    }

    let repo_id = guard.repo_id.clone();
    let api_prefix = format!("/api/models/{repo_id}/revision/");
    let resolve_prefix = format!("/{repo_id}/resolve/");
    if let Some(rev) = path.strip_prefix(&api_prefix) {
        if rev != "main" && rev != COMMIT {
            drop(guard);
            return respond(&mut out, "404 Not Found", &[], b"{\"error\":\"Revision not found\"}");
        }
        let siblings: Vec<serde_json::Value> = guard
            .files
            .iter()
            .map(|f| {
                let mut s = serde_json::json!({
                    "rfilename": f.path,
                    "size": f.content.len(),
                    "blobId": f.blob_id,
                });
                if f.lfs {
                    s["lfs"] = serde_json::json!({
                        "sha256": f.sha256,
                        "size": f.content.len(),
                        "pointerSize": 134,
                    });
                }
                s
            })
            .collect();
        let body = serde_json::json!({
            "id": repo_id,
            "sha": COMMIT,
            "siblings": siblings,
        })
        .to_string();
        drop(guard);
        return respond(
            &mut out,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            body.as_bytes(),
        );
    }

    if let Some(rest) = path.strip_prefix(&resolve_prefix) {
        let (rev, file_path) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(file) = guard.files.iter().find(|f| f.path == file_path).cloned() else {
            drop(guard);
            return respond(&mut out, "404 Not Found", &[], b"Entry not found");
        };
        if rev != "main" && rev != COMMIT {
            drop(guard);
            return respond(&mut out, "404 Not Found", &[], b"Revision not found");
        }
        if file.lfs && guard.behaviour.redirect_lfs {
            drop(guard);
            let headers = [
                ("X-Repo-Commit", COMMIT.to_owned()),
                ("X-Linked-Etag", format!("\"{}\"", file.sha256)),
                ("X-Linked-Size", file.content.len().to_string()),
                ("Location", format!("/cdn/{}", file.sha256)),
            ];
            return respond(&mut out, "302 Found", &headers, b"");
        }
        let etag = if file.lfs {
            file.sha256.clone()
        } else {
            file.blob_id.clone()
        };
        let extra = [("X-Repo-Commit", COMMIT.to_owned()), ("ETag", format!("\"{etag}\""))];
        return serve(&mut out, guard, &file, range.as_deref(), &extra);
    }

    if let Some(sha) = path.strip_prefix("/cdn/") {
        let Some(file) = guard.files.iter().find(|f| f.sha256 == sha).cloned() else {
            drop(guard);
            return respond(&mut out, "404 Not Found", &[], b"no such object");
        };
        return serve(&mut out, guard, &file, range.as_deref(), &[]);
    }
    drop(guard);
    respond(&mut out, "404 Not Found", &[], b"Not found")
}

/// Sends a file's bytes, honouring `Range: bytes=N-` and the misbehaviour knobs.
fn serve(
    out: &mut TcpStream,
    mut guard: std::sync::MutexGuard<'_, State>,
    file: &RepoFile,
    range: Option<&str>,
    extra: &[(&str, String)],
) -> std::io::Result<()> {
    let mut content = file.content.clone();
    if guard.behaviour.corrupt.contains(&file.path) {
        let mid = content.len() / 2;
        content[mid] ^= 0xff;
    }
    let drop_after = guard.behaviour.drop_after.remove(&file.path);
    let slow = guard.behaviour.slow.contains(&file.path);
    drop(guard);

    let len = content.len() as u64;
    let start = range
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<u64>().ok());
    let mut headers: Vec<(&str, String)> = extra.to_vec();
    headers.push(("Accept-Ranges", "bytes".into()));
    let (status, body) = match start {
        Some(s) if s >= len => {
            headers.push(("Content-Range", format!("bytes */{len}")));
            return respond(out, "416 Range Not Satisfiable", &headers, b"");
        }
        Some(s) => {
            headers.push(("Content-Range", format!("bytes {s}-{}/{len}", len - 1)));
            ("206 Partial Content", &content[s as usize..])
        }
        None => ("200 OK", &content[..]),
    };
    write_head(out, status, &headers, body.len())?;
    let cut = drop_after.map(|n| (n as usize).min(body.len())).unwrap_or(body.len());
    if slow {
        for chunk in body[..cut].chunks(64 * 1024) {
            out.write_all(chunk)?;
            out.flush()?;
            thread::sleep(Duration::from_millis(20));
        }
    } else {
        out.write_all(&body[..cut])?;
    }
    out.flush()?;
    out.shutdown(Shutdown::Both)
}

fn write_head(out: &mut TcpStream, status: &str, headers: &[(&str, String)], len: usize) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

fn respond(out: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> std::io::Result<()> {
    write_head(out, status, headers, body.len())?;
    out.write_all(body)?;
    out.flush()?;
    out.shutdown(Shutdown::Both)
}

/// Lays a fixture folder out as huggingface_hub would have cached it:
/// `models--ORG--NAME/{blobs/<sha256>, snapshots/<rev>/<path> → ../../blobs/<sha256>, refs/main}`.
/// Returns the snapshot folder.
#[cfg(unix)]
pub fn fake_cache_repo(cache: &Path, repo_id: &str, rev: &str, fixture: &Path) -> PathBuf {
    let repo = cache.join(format!("models--{}", repo_id.replace('/', "--")));
    let snapshot = repo.join("snapshots").join(rev);
    fs::create_dir_all(repo.join("blobs")).unwrap();
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), rev).unwrap();
    for (path, content) in fixture_files(fixture) {
        let blob = sha256_hex(&content);
        fs::write(repo.join("blobs").join(&blob), &content).unwrap();
        let link = snapshot.join(&path);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        let ups = "../".repeat(path.split('/').count() + 1);
        std::os::unix::fs::symlink(format!("{ups}blobs/{blob}"), &link).unwrap();
    }
    snapshot
}

/// Copies a folder recursively (plain files).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for (path, content) in fixture_files(from) {
        let dest = to.join(&path);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::write(dest, content).unwrap();
    }
}
