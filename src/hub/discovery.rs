//! Finding the models already on disk: the project's `weights/` folder, Lantern's own models
//! folder, folders the user added, and the Hugging Face cache (used in place, never copied).
//!
//! Cheap by construction: configs and safetensors headers only, no weights. Call it from a
//! background thread; it only reads.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::catalog::Catalog;
use super::hf_cache;
use super::inspect::{self, BaseArch, Family, Precision};
use crate::format::ByteSize;
use crate::paths;

/// Where a model folder was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelSource {
    /// The project's `weights/` folder.
    ProjectWeights,
    /// Lantern's data dir (`LANTERN_DATA_DIR/models`).
    DataDir,
    /// A folder the user picked.
    UserFolder,
    /// The Hugging Face cache, with the repo id and the snapshot's commit.
    HfCache {
        repo_id: String,
        commit: String,
        /// The refs pointing at this snapshot (usually `main`).
        refs: Vec<String>,
    },
}

impl ModelSource {
    pub fn label(&self) -> String {
        match self {
            ModelSource::ProjectWeights => "weights/".into(),
            ModelSource::DataDir => "data dir".into(),
            ModelSource::UserFolder => "user folder".into(),
            ModelSource::HfCache { repo_id, .. } => format!("HF cache ({repo_id})"),
        }
    }
}

/// Whether a model can be loaded as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "problems", rename_all = "kebab-case")]
pub enum ModelStatus {
    Complete,
    /// Missing components or weights (an interrupted download, a partial copy); each string
    /// says what is missing.
    Incomplete(Vec<String>),
}

/// One model found on disk.
#[derive(Debug, Clone, Serialize)]
pub struct LocalModel {
    /// The repo id for cached models, else the folder name.
    pub name: String,
    pub path: PathBuf,
    pub source: ModelSource,
    pub family: Family,
    pub family_label: &'static str,
    pub base: BaseArch,
    pub pipeline: String,
    pub prediction_type: String,
    /// Bytes on disk: symlinks followed once, each blob counted once.
    pub size: ByteSize,
    pub precision: Precision,
    pub status: ModelStatus,
    /// The catalog entry this is (matched by repo id), whose recommended settings apply.
    pub catalog_id: Option<String>,
    /// A single file without its VAE: usable once a separate VAE is chosen for it (or with
    /// the VAE of an installed model of its family, see [`family_donor`]).
    pub needs_vae: bool,
    /// A single file without its text encoder: usable with those of an installed model of its
    /// family (listed as incomplete when there is none).
    pub needs_text_encoder: bool,
}

impl LocalModel {
    pub fn is_complete(&self) -> bool {
        self.status == ModelStatus::Complete
    }
}

/// The places to look. [`DiscoveryRoots::standard`] fills them from the environment; tests
/// and the GUI's settings can build their own.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryRoots {
    /// Project `weights/` folders (each scanned two levels deep).
    pub project_weights: Vec<PathBuf>,
    /// Lantern's own models folder.
    pub data_dir_models: Option<PathBuf>,
    /// Folders the user added: a model folder itself or a folder of model folders.
    pub user_folders: Vec<PathBuf>,
    /// Hugging Face hub cache folders.
    pub hf_caches: Vec<PathBuf>,
}

impl DiscoveryRoots {
    /// `weights/` under the current dir and under the crate root this binary was built from
    /// (a `cargo run` from elsewhere still finds the project's models), the data folder's `models/`,
    /// the given user folders and the Hugging Face cache from the environment.
    pub fn standard(user_folders: Vec<PathBuf>) -> Self {
        let mut project_weights = Vec::new();
        if let Ok(cwd) = std::env::current_dir() {
            project_weights.push(cwd.join("weights"));
        }
        project_weights.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("weights"));
        DiscoveryRoots {
            project_weights,
            data_dir_models: Some(paths::DataDir::from_env().models()),
            user_folders,
            hf_caches: hf_cache::default_cache_dir().into_iter().collect(),
        }
    }
}

/// Lists every model under `roots`. Folders reached twice (the same `weights/` via two roots, a
/// user folder inside the cache) are listed once, under the first source.
pub fn discover(roots: &DiscoveryRoots) -> Vec<LocalModel> {
    let catalog = Catalog::builtin().ok();
    let mut seen = HashSet::new();
    let mut seen_files = HashSet::new();
    let mut out = Vec::new();
    let mut add = |dir: &Path, name: String, source: ModelSource, out: &mut Vec<LocalModel>| {
        let key = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        if !seen.insert(key) {
            return;
        }
        if let Some(model) = describe(dir, name, source, catalog.as_ref()) {
            out.push(model);
        }
    };

    let mut add_file = |file: &Path, source: ModelSource, out: &mut Vec<LocalModel>| {
        let key = fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        if !seen_files.insert(key) {
            return;
        }
        if let Some(model) = describe_file(file, source) {
            out.push(model);
        }
    };

    for root in &roots.project_weights {
        for dir in model_dirs(root, 2) {
            add(&dir, folder_name(&dir), ModelSource::ProjectWeights, &mut out);
        }
        for file in checkpoint_files(root, 2) {
            add_file(&file, ModelSource::ProjectWeights, &mut out);
        }
    }
    if let Some(root) = &roots.data_dir_models {
        for dir in model_dirs(root, 2) {
            add(&dir, folder_name(&dir), ModelSource::DataDir, &mut out);
        }
        for file in checkpoint_files(root, 2) {
            add_file(&file, ModelSource::DataDir, &mut out);
        }
    }
    for root in &roots.user_folders {
        // A checkpoint opened by hand is listed as itself (family, size, whether it has a VAE).
        if root.is_file() && root.extension().is_some_and(|e| e == "safetensors") {
            add_file(root, ModelSource::UserFolder, &mut out);
            continue;
        }
        for dir in model_dirs(root, 1) {
            add(&dir, folder_name(&dir), ModelSource::UserFolder, &mut out);
        }
        // A1111's models/Stable-diffusion and ComfyUI's models/checkpoints allow subfolders.
        for file in checkpoint_files(root, 2) {
            add_file(&file, ModelSource::UserFolder, &mut out);
        }
    }
    for cache in &roots.hf_caches {
        for repo in hf_cache::cached_repos(cache) {
            for (commit, refs) in repo.listed_snapshots() {
                let dir = repo.snapshot_dir(&commit);
                let source = ModelSource::HfCache {
                    repo_id: repo.repo_id.clone(),
                    commit,
                    refs,
                };
                add(&dir, repo.repo_id.clone(), source, &mut out);
            }
        }
    }
    mark_missing_text_encoders(&mut out);
    out
}

/// Separate VAE files where people keep them: `*.vae.safetensors` anywhere a checkpoint may sit,
/// any `.safetensors` in a folder called `VAE` there (A1111's `models/VAE`, ComfyUI's
/// `models/vae`), and the `VAE` folder beside a user folder (the user added A1111's
/// `models/Stable-diffusion`; its VAEs are in `models/VAE`). Sorted by file name, each once.
pub fn discover_vaes(roots: &DiscoveryRoots) -> Vec<PathBuf> {
    let mut places: Vec<(PathBuf, usize)> = roots.project_weights.iter().map(|p| (p.clone(), 2)).collect();
    places.extend(roots.data_dir_models.iter().map(|p| (p.clone(), 2)));
    for folder in &roots.user_folders {
        // A checkpoint opened by hand: the files beside it.
        let folder = match folder.is_file() {
            true => folder.parent().unwrap_or(folder),
            false => folder.as_path(),
        };
        places.push((folder.to_path_buf(), 2));
        if let Some(parent) = folder.parent() {
            places.extend(["VAE", "vae"].map(|name| (parent.join(name), 1)));
        }
    }
    let mut seen = HashSet::new();
    let mut out: Vec<PathBuf> = places
        .iter()
        .flat_map(|(root, depth)| checkpoint_files(root, *depth))
        .filter(|file| is_vae_file(file))
        .filter(|file| seen.insert(fs::canonicalize(file).unwrap_or_else(|_| file.clone())))
        .collect();
    out.sort_by_key(|f| folder_name(f).to_lowercase());
    out
}

/// The model whose VAE or text encoders a checkpoint without them borrows: the first complete
/// diffusers folder of the same base architecture (SD 1.x, SD 2.x and SDXL each keep one VAE
/// and one text encoder across their fine-tunes). `None` when no such model is installed.
pub fn family_donor(models: &[LocalModel], base: BaseArch) -> Option<&LocalModel> {
    models
        .iter()
        .find(|m| m.is_complete() && m.base == base && m.path.join("model_index.json").is_file())
}

/// A checkpoint without a text encoder and no installed model of its family to lend one
/// cannot run: listed as incomplete, saying so.
fn mark_missing_text_encoders(models: &mut [LocalModel]) {
    let lonely: Vec<usize> = (0..models.len())
        .filter(|&i| models[i].needs_text_encoder && family_donor(models, models[i].base).is_none())
        .collect();
    for i in lonely {
        models[i].status = ModelStatus::Incomplete(vec![
            "no text encoder in the file, and no installed diffusers model of its family to lend one".into(),
        ]);
    }
}

/// LoRA files where people keep them: the data folder's `loras/` (beside its `models/`),
/// `weights/loras/` (or `Lora`), and for each added folder the folder itself when it is a
/// LoRA folder, else the `Lora`/`loras` folder beside it (A1111's `models/Lora` next to
/// `models/Stable-diffusion`, ComfyUI's `models/loras` next to `models/checkpoints`). Sorted by
/// name; a file reached twice is listed once. Two files with the same name in two folders are
/// both listed: the prompt's tag cannot tell them apart, which `pipeline::loras` reports.
/// `lora_folders` are scanned as they are (folders the user named as LoRA folders).
pub fn discover_loras(roots: &DiscoveryRoots, lora_folders: &[PathBuf]) -> Vec<PathBuf> {
    const NAMES: [&str; 3] = ["loras", "Lora", "lora"];
    let mut places: Vec<PathBuf> = lora_folders.to_vec();
    if let Some(data) = roots.data_dir_models.as_deref().and_then(Path::parent) {
        places.push(data.join("loras"));
    }
    for weights in &roots.project_weights {
        places.extend(NAMES.map(|n| weights.join(n)));
    }
    for folder in &roots.user_folders {
        let folder = if folder.is_file() {
            folder.parent().unwrap_or(folder)
        } else {
            folder
        };
        if is_lora_folder(folder) {
            places.push(folder.to_path_buf());
        } else if let Some(parent) = folder.parent() {
            places.extend(NAMES.map(|n| parent.join(n)));
        }
    }
    files_in(places, |file| {
        !folder_name(file).to_ascii_lowercase().ends_with(".vae.safetensors")
    })
}

/// The `.safetensors` files `keep` accepts in `places` (two levels down), each once however
/// it is reached, sorted by name.
fn files_in(mut places: Vec<PathBuf>, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut seen_places = HashSet::new();
    places.retain(|p| seen_places.insert(fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())));
    let mut seen = HashSet::new();
    let mut out: Vec<PathBuf> = places
        .iter()
        .flat_map(|root| checkpoint_files(root, 2))
        .filter(|file| keep(file))
        .filter(|file| seen.insert(fs::canonicalize(file).unwrap_or_else(|_| file.clone())))
        .collect();
    out.sort_by_key(|f| folder_name(f).to_lowercase());
    out
}

/// Textual-inversion embedding files where people keep them: the data folder's `embeddings/`
/// (beside its `models/`), `weights/embeddings/`, and for each added folder the folder itself
/// when it is called `embeddings`, else the `embeddings` folder beside it (ComfyUI's
/// `models/embeddings`) and beside its parent (A1111's `embeddings/` at the top of the web UI,
/// two levels above `models/Stable-diffusion`). `embedding_folders` are scanned as they are.
pub fn discover_embeddings(roots: &DiscoveryRoots, embedding_folders: &[PathBuf]) -> Vec<PathBuf> {
    let mut places: Vec<PathBuf> = embedding_folders.to_vec();
    if let Some(data) = roots.data_dir_models.as_deref().and_then(Path::parent) {
        places.push(data.join("embeddings"));
    }
    places.extend(roots.project_weights.iter().map(|w| w.join("embeddings")));
    for folder in &roots.user_folders {
        let folder = if folder.is_file() {
            folder.parent().unwrap_or(folder)
        } else {
            folder
        };
        if folder_name(folder).eq_ignore_ascii_case("embeddings") {
            places.push(folder.to_path_buf());
            continue;
        }
        let parent = folder.parent();
        places.extend(parent.map(|p| p.join("embeddings")));
        places.extend(parent.and_then(Path::parent).map(|p| p.join("embeddings")));
    }
    files_in(places, |_| true)
}

/// What the prompt boxes need of an embedding file: its name and how many tokens it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingInfo {
    pub path: PathBuf,
    /// The name a prompt writes (the file stem).
    pub name: String,
    /// Vectors, from the header (`None`: not an embedding file).
    pub vectors: Option<usize>,
}

/// Reads an embedding file's header: one tensor [n, width], or SDXL's `clip_l`/`clip_g`.
pub fn describe_embedding(path: &Path) -> EmbeddingInfo {
    let vectors = crate::model::single_file::header::read(path).ok().and_then(|h| {
        let names: Vec<&str> = h.names().collect();
        let main = if h.has("clip_l") {
            Some("clip_l")
        } else if names.len() == 1 {
            Some(names[0])
        } else {
            None
        };
        let shape = h.shape(main?)?;
        match shape {
            [n, _] => Some(*n),
            [_] => Some(1),
            _ => None,
        }
    });
    EmbeddingInfo {
        path: path.to_path_buf(),
        name: crate::pipeline::loras::lora_name(path),
        vectors,
    }
}

fn is_lora_folder(folder: &Path) -> bool {
    let name = folder_name(folder).to_ascii_lowercase();
    name == "lora" || name == "loras"
}

/// What a file in a LoRA folder is, by its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoraKind {
    /// A LoRA for this architecture.
    For(BaseArch),
    /// A LoRA whose layers do not say which family it is for.
    Unknown,
    /// Not a LoRA (unreadable, or another kind of file).
    NotALora,
}

/// What the LoRA browser shows of a file, from its header alone.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraInfo {
    pub path: PathBuf,
    /// The name a prompt's tag uses (the file stem).
    pub name: String,
    pub size: u64,
    pub kind: LoraKind,
    /// An image beside the file with the same stem (`.png`, `.preview.png`, `.jpg`, …).
    pub preview: Option<PathBuf>,
}

/// Reads a LoRA file's header to tell its family: SDXL's second text encoder or 2048-wide
/// cross-attention, SD 2's 1024, SD 1's 768.
pub fn describe_lora(path: &Path) -> LoraInfo {
    use crate::model::single_file::header;
    let name = crate::pipeline::loras::lora_name(path);
    let size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let kind = header::read(path).map_or(LoraKind::NotALora, |h| {
        let is_lora = h
            .names()
            .any(|n| n.contains("lora_down") || n.contains("lora_A") || n.contains(".lora."));
        if !is_lora {
            return LoraKind::NotALora;
        }
        if h.names()
            .any(|n| n.starts_with("lora_te2_") || n.starts_with("text_encoder_2."))
        {
            return LoraKind::For(BaseArch::Sdxl);
        }
        let width = h
            .names()
            .filter(|n| {
                let k = n.replace('.', "_");
                (k.contains("attn2_to_k") || k.contains("attn2_to_v"))
                    && (k.contains("lora_down") || k.contains("lora_A"))
            })
            .find_map(|n| h.shape(n).and_then(|s| s.get(1).copied()));
        match width {
            Some(2048) => LoraKind::For(BaseArch::Sdxl),
            Some(1024) => LoraKind::For(BaseArch::Sd2),
            Some(768) => LoraKind::For(BaseArch::Sd1),
            // Widths of no released family: what the trainer wrote in the file, if anything.
            _ => super::lora_family::family_from_metadata(&h.metadata).map_or(LoraKind::Unknown, LoraKind::For),
        }
    });
    let stem = path.with_extension("");
    let preview = ["png", "preview.png", "jpg", "jpeg", "webp", "preview.jpg"]
        .iter()
        .map(|ext| stem.with_extension(ext))
        .find(|p| p.is_file());
    LoraInfo {
        path: path.to_path_buf(),
        name,
        size,
        kind,
        preview,
    }
}

/// Named like a VAE (`*.vae.safetensors`) or kept in a `VAE` folder.
fn is_vae_file(file: &Path) -> bool {
    let name = folder_name(file).to_ascii_lowercase();
    let in_vae_folder = file
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n.eq_ignore_ascii_case("vae"));
    name.ends_with(".vae.safetensors") || (in_vae_folder && name.ends_with(".safetensors"))
}

/// Describes one folder; `None` when it is not a supported model folder.
pub fn describe(dir: &Path, name: String, source: ModelSource, catalog: Option<&Catalog>) -> Option<LocalModel> {
    let found = inspect::inspect(dir, &name)?;
    let catalog_id = match &source {
        ModelSource::HfCache { repo_id, .. } => catalog.and_then(|c| c.find(repo_id)).map(|e| e.id.clone()),
        _ => None,
    };
    let status = if found.problems.is_empty() {
        ModelStatus::Complete
    } else {
        ModelStatus::Incomplete(found.problems)
    };
    Some(LocalModel {
        name,
        path: dir.to_path_buf(),
        source,
        family: found.family,
        family_label: found.family.label(),
        base: found.base,
        pipeline: found.pipeline,
        prediction_type: found.prediction_type,
        size: ByteSize(size_on_disk(dir)),
        precision: found.precision,
        status,
        catalog_id,
        needs_vae: false,
        needs_text_encoder: false,
    })
}

/// Describes one single-file checkpoint from its header; `None` when it is not one Lantern
/// recognises as a Stable Diffusion checkpoint (VAEs, LoRAs, embeddings and other models
/// kept beside checkpoints are skipped).
pub fn describe_file(file: &Path, source: ModelSource) -> Option<LocalModel> {
    use crate::model::single_file::{Arch, SingleFile, TextLayout};
    let sf = match SingleFile::open(file, None) {
        Ok(sf) => sf,
        Err(e) => {
            tracing::debug!(file = %file.display(), "not a checkpoint: {e}");
            return None;
        }
    };
    let d = &sf.detected;
    let (base, family) = match (d.arch, d.turbo) {
        (Arch::Sd1, _) => (BaseArch::Sd1, Family::Sd1),
        (Arch::Sd2, false) => (BaseArch::Sd2, Family::Sd2),
        (Arch::Sd2, true) => (BaseArch::Sd2, Family::SdTurbo),
        (Arch::Sdxl, false) => (BaseArch::Sdxl, Family::Sdxl),
        (Arch::Sdxl, true) => (BaseArch::Sdxl, Family::SdxlTurbo),
    };
    let problems: Vec<String> = Vec::new();
    let dtypes = sf.header.float_dtypes();
    let precision = match dtypes.as_slice() {
        ["F32"] => Precision::Fp32,
        ["F16"] => Precision::Fp16,
        ["BF16"] => Precision::Bf16,
        [] => Precision::Unknown,
        _ => Precision::Mixed,
    };
    let status = if problems.is_empty() {
        ModelStatus::Complete
    } else {
        ModelStatus::Incomplete(problems)
    };
    let pipeline = match d.arch {
        Arch::Sdxl => "StableDiffusionXLPipeline (single file)",
        _ => "StableDiffusionPipeline (single file)",
    };
    Some(LocalModel {
        name: crate::model::display_name(file),
        path: file.to_path_buf(),
        source,
        family,
        family_label: family.label(),
        base,
        pipeline: pipeline.into(),
        prediction_type: d.prediction.as_str().into(),
        size: ByteSize(fs::metadata(file).map(|m| m.len()).unwrap_or(0)),
        precision,
        status,
        needs_vae: d.vae_prefix.is_none(),
        needs_text_encoder: d.text == TextLayout::Missing,
        catalog_id: None,
    })
}

/// `.safetensors` files in `root` and its subfolders, `depth` levels down, outside diffusers
/// model folders (whose component weights are not checkpoints) and hidden folders.
fn checkpoint_files(root: &Path, depth: usize) -> Vec<PathBuf> {
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
        let name = folder_name(&path);
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if depth > 0 {
                out.extend(checkpoint_files(&path, depth - 1));
            }
        } else if name.to_ascii_lowercase().ends_with(".safetensors") && path.is_file() {
            out.push(path);
        }
    }
    out
}

fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// `root` itself when it holds `model_index.json`, else its subfolders that do, `depth` levels
/// down (`weights/org/name` layouts). HF-cache-style folders are left to the cache scan.
fn model_dirs(root: &Path, depth: usize) -> Vec<PathBuf> {
    if root.join("model_index.json").is_file() {
        return vec![root.to_path_buf()];
    }
    let mut out = Vec::new();
    if depth == 0 {
        return out;
    }
    let Ok(entries) = fs::read_dir(root) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| !folder_name(p).starts_with('.'))
        .collect();
    dirs.sort();
    for dir in dirs {
        out.extend(model_dirs(&dir, depth - 1));
    }
    out
}

/// Bytes under `dir`, following each file symlink once and counting each target file once
/// (snapshots link several paths to one blob). Symlinked folders are not entered, so link loops
/// cannot trap the scan.
pub fn size_on_disk(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(link_meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if link_meta.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(meta) = fs::metadata(&path) else {
                continue; // broken link
            };
            if !meta.is_file() {
                continue;
            }
            let key = fs::canonicalize(&path).unwrap_or(path);
            if seen.insert(key) {
                total += meta.len();
            }
        }
    }
    total
}
