//! Models in the window: what discovery found, what the catalog offers, and the downloads in
//! flight, as plain data the panels draw ([`ModelsState`]); plus the controller that runs the
//! scans and downloads on background threads and folds their results back in
//! ([`ModelsController`]). Nothing here touches the disk or the network on the UI thread.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Failure, Kind};
use crate::format::ByteSize;
use crate::hub::{
    CancelFlag, Catalog, CatalogEntry, DiscoveryRoots, DownloadEvent, DownloadRequest, HubConfig, LocalModel,
    ModelSource, RecommendedSettings, describe_lora, discover, discover_loras, discover_vaes, hf_cache, spawn_download,
};

use super::tasks::Tasks;
use crate::paths::DataDir;
use crate::recipe::Recipe;
use crate::t;

/// Where the window looks for models and where it downloads them. The app builds it from the
/// process environment ([`ModelsEnv::standard`]); tests pass their own so no test has to touch
/// process-global variables like `HF_HUB_CACHE` or `HF_ENDPOINT`.
#[derive(Debug, Clone)]
pub struct ModelsEnv {
    /// Folders to scan; the user's own folders from the settings are added at each scan.
    pub roots: DiscoveryRoots,
    /// The Hub to download from, or why it cannot be used (e.g. a malformed `HF_ENDPOINT`).
    pub hub: Result<HubConfig, String>,
    /// The app runs the model on the CPU, so the catalog suggests its CPU-friendly model first.
    pub on_cpu: bool,
}

impl ModelsEnv {
    /// The project's `weights/`, `<data_dir>/models`, and the Hugging Face cache and Hub from
    /// `HF_HUB_CACHE`/`HF_HOME`/`HF_ENDPOINT`/`HF_TOKEN`.
    pub fn standard(data: &DataDir) -> ModelsEnv {
        let mut roots = DiscoveryRoots::standard(Vec::new());
        roots.data_dir_models = Some(data.models());
        let hub = HubConfig::from_env().map_err(|e| e.to_string());
        if let Ok(hub) = &hub {
            roots.hf_caches = vec![hub.cache_dir.clone()];
        }
        ModelsEnv {
            roots,
            hub,
            on_cpu: true,
        }
    }

    /// Only the given Hugging Face cache (and the Hub at `endpoint`): what tests and scripted
    /// runs use to see a controlled set of models.
    pub fn isolated(hf_cache: &Path, endpoint: &str) -> ModelsEnv {
        let hub = HubConfig {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            token: None,
            cache_dir: hf_cache.to_path_buf(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
        };
        ModelsEnv {
            roots: DiscoveryRoots {
                hf_caches: vec![hf_cache.to_path_buf()],
                ..DiscoveryRoots::default()
            },
            hub: Ok(hub),
            on_cpu: true,
        }
    }

    /// Every place a scan looks, for telling the user where nothing was found.
    pub fn looked_in(&self, user_folders: &[PathBuf]) -> Vec<PathBuf> {
        let r = &self.roots;
        let mut out: Vec<PathBuf> = r.project_weights.clone();
        out.extend(r.data_dir_models.clone());
        out.extend(user_folders.iter().cloned());
        out.extend(r.hf_caches.iter().cloned());
        out.dedup();
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ScanState {
    /// No scan has finished yet: the first screen must not claim "nothing found".
    #[default]
    NotYet,
    Running,
    Done,
}

/// One download as the window shows it, folded from [`DownloadEvent`]s.
#[derive(Clone, Debug, PartialEq)]
pub struct DownloadView {
    /// The repo id: one download per repo at a time.
    pub repo_id: String,
    /// What the user asked for (catalog id or repo id), used again to resume.
    pub request: String,
    /// Name shown to people (the catalog name, else the repo id).
    pub name: String,
    /// A tiny autoencoder (TAESD) rather than a model: nothing to "use" once it is in, the
    /// previews and Draft decode of its family take it.
    pub preview_decoder: bool,
    pub phase: DownloadPhase,
    pub files: usize,
    pub files_done: usize,
    pub current_file: Option<String>,
    pub file_done: u64,
    pub file_size: u64,
    pub done: u64,
    pub total: u64,
    /// Bytes found on disk when this run started (a resumed download).
    pub already: u64,
    /// Files checked by size only (the Hub lists no sha256 for them).
    pub size_only: usize,
    pub bytes_per_sec: f64,
    pub eta: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DownloadPhase {
    /// Asking the Hub which files and sizes.
    Connecting,
    Running,
    Finished {
        snapshot: PathBuf,
    },
    /// The failure as the download reported it: its kind decides how it is worded
    /// ([`download_failure_parts`]), its message is the technical line.
    Failed(Failure),
    Cancelled,
}

impl DownloadView {
    pub fn new(repo_id: &str, request: &str, name: &str) -> DownloadView {
        DownloadView {
            repo_id: repo_id.to_owned(),
            request: request.to_owned(),
            name: name.to_owned(),
            preview_decoder: false,
            phase: DownloadPhase::Connecting,
            files: 0,
            files_done: 0,
            current_file: None,
            file_done: 0,
            file_size: 0,
            done: 0,
            total: 0,
            already: 0,
            size_only: 0,
            bytes_per_sec: 0.0,
            eta: None,
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self.phase, DownloadPhase::Connecting | DownloadPhase::Running)
    }

    /// Stopped part-way: a new run continues from the `.incomplete` files.
    pub fn can_resume(&self) -> bool {
        matches!(self.phase, DownloadPhase::Failed { .. } | DownloadPhase::Cancelled)
    }

    pub fn fraction(&self) -> f32 {
        if self.total == 0 {
            0.0
        } else {
            (self.done as f64 / self.total as f64) as f32
        }
    }

    pub fn file_fraction(&self) -> f32 {
        if self.file_size == 0 {
            0.0
        } else {
            (self.file_done as f64 / self.file_size as f64) as f32
        }
    }

    /// One short line when some files have no hash to check ("3 small files (no hash from
    /// the Hub) are checked by size only"), else nothing.
    pub fn size_only_note(&self) -> Option<String> {
        match self.size_only {
            0 => None,
            1 => Some("1 small file (no hash from the Hub) is checked by size only".into()),
            n => Some(format!(
                "{n} small files (no hash from the Hub) are checked by size only"
            )),
        }
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: DownloadEvent) {
        match event {
            DownloadEvent::Planned {
                files,
                total,
                already,
                size_only,
                ..
            } => {
                self.phase = DownloadPhase::Running;
                self.files = files;
                self.size_only = size_only;
                self.total = total;
                self.already = already;
                self.done = already;
            }
            DownloadEvent::FileStarted {
                path,
                size,
                resume_from,
            } => {
                self.current_file = Some(path);
                self.file_size = size;
                self.file_done = resume_from;
            }
            DownloadEvent::Progress(p) => {
                self.current_file = Some(p.file);
                self.file_done = p.file_done;
                self.file_size = p.file_size;
                self.done = p.done;
                self.total = p.total;
                self.bytes_per_sec = p.bytes_per_sec;
                self.eta = p.eta;
            }
            DownloadEvent::FileDone { .. } => self.files_done += 1,
            DownloadEvent::Finished { snapshot } => {
                self.done = self.total;
                self.current_file = None;
                self.eta = None;
                self.phase = DownloadPhase::Finished { snapshot };
            }
            DownloadEvent::Failed(failure) => self.phase = DownloadPhase::Failed(failure),
            DownloadEvent::Cancelled => self.phase = DownloadPhase::Cancelled,
        }
    }

    /// "12.5 MB of 2.6 GB · 8.1 MB/s · 5 min left".
    pub fn summary(&self) -> String {
        let mut text = t!(
            "download-amount",
            done = ByteSize(self.done).to_string(),
            total = ByteSize(self.total).to_string()
        );
        if self.bytes_per_sec > 0.0 {
            text.push_str(&format!(" · {}/s", ByteSize(self.bytes_per_sec as u64)));
        }
        if let Some(eta) = self.eta {
            text.push_str(" · ");
            text.push_str(&t!("time-left", time = crate::format::format_duration(eta)));
        }
        text
    }
}

/// What the window says first when the model server could not be reached.
pub fn offline_headline() -> String {
    t!("offline-headline")
}

/// A download failure in two parts: the sentence to show, and the technical line to keep
/// beside it for whoever has to fix it. Decided by the failure's kind, never by its wording:
/// an unreachable server ([`Kind::Offline`]) is called what the user will recognise.
pub fn download_failure_parts(failure: &Failure) -> (String, Option<&str>) {
    match failure.kind {
        Kind::Offline => (offline_headline(), Some(failure.message.as_str())),
        _ => (failure.message.clone(), None),
    }
}

/// A download failure in plain words, on one line (the status line).
pub fn plain_download_error(failure: &Failure) -> String {
    match download_failure_parts(failure) {
        (headline, Some(detail)) => format!("{headline} ({detail})"),
        (headline, None) => headline,
    }
}

/// Everything about models that the panels draw.
#[derive(Debug, Default)]
pub struct ModelsState {
    pub scan: ScanState,
    /// Models found on disk, complete ones first.
    pub local: Vec<LocalModel>,
    /// Where the last scan looked (said on the first screen when nothing was found).
    pub looked_in: Vec<PathBuf>,
    /// The known models, the one suggested for this machine first.
    pub catalog: Vec<CatalogEntry>,
    /// The known tiny autoencoders (TAESD) for previews and Draft decode.
    pub preview_decoders: Vec<CatalogEntry>,
    pub downloads: Vec<DownloadView>,
    /// Whether the model manager window is open.
    pub manager_open: bool,
    /// The repo id typed into the manager's "download from the Hub" field.
    pub repo_input: String,
    /// Why downloads cannot work at all (a bad `HF_ENDPOINT`), shown instead of failing later.
    pub hub_problem: Option<String>,
    /// Recommended settings applied on the last explicit model choice, said once the model is
    /// ready so the change of steps/guidance/sampler is no surprise.
    pub applied_note: Option<(PathBuf, String)>,
    /// The `Model hash` pictures of each listed model carry, where it is cheaply known (see
    /// `model::known_model_hash`), and of every model loaded this run: how a restored
    /// picture finds its model.
    pub hashes: std::collections::HashMap<PathBuf, String>,
    /// Separate VAE files found on disk (`*.vae.safetensors`, `VAE` folders).
    pub vaes: Vec<PathBuf>,
    /// LoRA files found on disk (see `hub::discover_loras`), with what their headers say.
    pub loras: Vec<crate::hub::LoraInfo>,
    /// How many scans have finished (the LoRA browser reloads its previews after each).
    pub scans_done: u64,
    /// Textual-inversion embeddings found on disk (see `hub::discover_embeddings`).
    pub embeddings: Vec<crate::hub::EmbeddingInfo>,
    /// Tiny autoencoders found on disk (see `hub::discover_taesds`): previews and Draft decode.
    pub taesds: Vec<crate::hub::TaesdInfo>,
}

impl ModelsState {
    pub fn complete(&self) -> impl Iterator<Item = &LocalModel> {
        self.local.iter().filter(|m| m.is_complete())
    }

    pub fn find_local(&self, path: &Path) -> Option<&LocalModel> {
        self.local.iter().find(|m| m.path == path)
    }

    /// The installed model whose VAE the checkpoint at `path` decodes with when it has none
    /// of its own and the user chose none (see `hub::family_donor`).
    pub fn vae_donor(&self, path: &Path) -> Option<&LocalModel> {
        let model = self.find_local(path).filter(|m| m.needs_vae)?;
        crate::hub::family_donor(&self.local, model.base)
    }

    /// The installed model whose text encoders the checkpoint at `path` uses, having none.
    pub fn text_encoder_donor(&self, path: &Path) -> Option<&LocalModel> {
        let model = self.find_local(path).filter(|m| m.needs_text_encoder)?;
        crate::hub::family_donor(&self.local, model.base)
    }

    /// The tiny autoencoder installed for the family of the model at `path`, if any.
    pub fn taesd_for(&self, path: &Path) -> Option<&crate::hub::TaesdInfo> {
        crate::hub::taesd_for(&self.taesds, self.find_local(path)?.base)
    }

    /// Whether the model at `path` cannot load until the user chooses a VAE for it.
    pub fn needs_vae_choice(&self, path: &Path, chosen: Option<&Path>) -> bool {
        chosen.is_none() && self.find_local(path).is_some_and(|m| m.needs_vae) && self.vae_donor(path).is_none()
    }

    pub fn download(&self, repo_id: &str) -> Option<&DownloadView> {
        self.downloads.iter().find(|d| d.repo_id == repo_id)
    }

    pub fn any_download_active(&self) -> bool {
        self.downloads.iter().any(DownloadView::is_active)
    }
}

/// "Hugging Face cache: stabilityai/sd-turbo", "weights/ folder", …
pub fn source_label(source: &ModelSource) -> String {
    match source {
        ModelSource::ProjectWeights => t!("source-project-weights"),
        ModelSource::DataDir => t!("source-data-dir"),
        ModelSource::UserFolder => t!("source-user-folder"),
        ModelSource::HfCache { repo_id, .. } => t!("source-hf-cache", repo = repo_id.as_str()),
    }
}

/// "SD 1.x · 13.2 MB · fp32".
pub fn model_details(m: &LocalModel) -> String {
    format!("{} · {} · {}", m.family_label, m.size, m.precision)
}

/// The catalog's settings for a model, and whose they are ("SD-Turbo").
pub fn recommendation<'a>(catalog: &'a Catalog, model: &LocalModel) -> Option<(&'a str, &'a RecommendedSettings)> {
    let settings = catalog.recommended_for(model.catalog_id.as_deref(), model.family)?;
    let entry = catalog
        .models
        .iter()
        .find(|e| e.recommended.as_ref().is_some_and(|r| std::ptr::eq(r, settings)))?;
    Some((entry.name.as_str(), settings))
}

/// Writes the recommended settings into the parameters; returns what changed, in words.
pub fn apply_recommended(params: &mut Recipe, from: &str, r: &RecommendedSettings) -> String {
    params.steps = r.steps;
    params.guidance = f64::from(r.guidance);
    if let Some(sampler) = r.sampler_kind() {
        params.sampler = sampler;
    }
    params.width = r.width;
    params.height = r.height;
    t!(
        "recommended-applied",
        from = from,
        steps = r.steps,
        guidance = f64::from(r.guidance),
        sampler = crate::gui::panels::parameters::sampler_label(params.sampler),
        size = format!("{}×{}", r.width, r.height)
    )
}

/// A failed load in two parts: which file (the worker's messages start with the path or name
/// the file and field) and the rest, so the first screen can show the file prominently.
pub fn readable_load_error(model: &Path, message: &str) -> String {
    let name = crate::model::display_name(model);
    let message = message.trim();
    // Paths inside the model folder read better relative to it.
    let prefix = format!("{}/", model.display());
    let message = message.replace(&prefix, "");
    t!("load-failed", name = name, message = message)
}

/// Results from the background threads.
enum Msg {
    Scanned {
        generation: u64,
        models: Vec<LocalModel>,
        vaes: Vec<PathBuf>,
        loras: Vec<crate::hub::LoraInfo>,
        embeddings: Vec<crate::hub::EmbeddingInfo>,
        taesds: Vec<crate::hub::TaesdInfo>,
    },
    /// The listed models' hashes, after the list (a few MiB read per folder).
    Hashed {
        generation: u64,
        hashes: Vec<(PathBuf, String)>,
    },
    ScanFailed {
        generation: u64,
        why: String,
    },
    Download {
        repo_id: String,
        event: DownloadEvent,
    },
    Described {
        path: PathBuf,
        model: Option<LocalModel>,
    },
}

/// What the app should react to after [`ModelsController::poll`].
#[derive(Debug)]
pub enum ModelsNotice {
    DownloadFinished {
        name: String,
        snapshot: PathBuf,
    },
    DownloadFailed {
        name: String,
        failure: Failure,
    },
    DownloadCancelled {
        name: String,
    },
    /// The description of a model chosen by hand (for its recommended settings).
    Described(LocalModel),
    /// A scan stopped with an internal error (the text says why).
    ScanFailed(String),
}

/// Runs scans, downloads and descriptions on background threads; owns the cancel switches.
pub struct ModelsController {
    env: ModelsEnv,
    catalog: Option<Catalog>,
    tasks: Tasks<Msg>,
    /// Only the latest scan's result is kept (a rescan may overtake an earlier one).
    scan_generation: u64,
    cancels: Vec<(String, CancelFlag)>,
}

impl ModelsController {
    pub fn new(ctx: &egui::Context, env: ModelsEnv, state: &mut ModelsState) -> ModelsController {
        let catalog = Catalog::builtin().ok();
        if let Some(c) = &catalog {
            let suggested = c.suggested(env.on_cpu).map(|e| e.id.clone());
            let mut entries: Vec<CatalogEntry> = c.pipelines().cloned().collect();
            entries.sort_by_key(|e| Some(&e.id) != suggested.as_ref());
            state.catalog = entries;
            state.preview_decoders = c.preview_decoders().cloned().collect();
        }
        state.hub_problem = env.hub.as_ref().err().cloned();
        ModelsController {
            env,
            catalog,
            tasks: Tasks::new(ctx),
            scan_generation: 0,
            cancels: Vec::new(),
        }
    }

    pub fn catalog(&self) -> Option<&Catalog> {
        self.catalog.as_ref()
    }

    /// Starts a scan of every root plus the user's folders; LoRAs are also looked for in
    /// `lora_folders` (the data folder's `loras/`), embeddings in `embedding_folders`.
    pub fn rescan(
        &mut self,
        state: &mut ModelsState,
        user_folders: &[PathBuf],
        (lora_folders, embedding_folders): (&[PathBuf], &[PathBuf]),
        dtype: candle_core::DType,
    ) {
        let lora_folders = lora_folders.to_vec();
        let embedding_folders = embedding_folders.to_vec();
        self.scan_generation += 1;
        let generation = self.scan_generation;
        let mut roots = self.env.roots.clone();
        roots.user_folders = user_folders.to_vec();
        state.looked_in = self.env.looked_in(user_folders);
        state.scan = ScanState::Running;
        let scan = move || {
            let mut models = discover(&roots);
            for m in &mut models {
                // Canonical paths, so a model chosen through another spelling is recognised.
                if let Ok(p) = std::fs::canonicalize(&m.path) {
                    m.path = p;
                }
            }
            models.sort_by_key(|m| !m.is_complete());
            let vaes = discover_vaes(&roots);
            let loras = discover_loras(&roots, &lora_folders)
                .iter()
                .map(|f| describe_lora(f))
                .collect();
            let embeddings = crate::hub::discover_embeddings(&roots, &embedding_folders)
                .iter()
                .map(|f| crate::hub::describe_embedding(f))
                .collect();
            let taesds = crate::hub::discover_taesds(&roots);
            Msg::Scanned {
                generation,
                models,
                vaes,
                loras,
                embeddings,
                taesds,
            }
        };
        let mut roots = self.env.roots.clone();
        roots.user_folders = user_folders.to_vec();
        let hash = move || {
            let hashes = discover(&roots)
                .into_iter()
                .filter_map(|m| {
                    let path = std::fs::canonicalize(&m.path).unwrap_or(m.path);
                    let hash = crate::model::known_model_hash(&path, dtype)?;
                    Some((path, hash))
                })
                .collect();
            Msg::Hashed { generation, hashes }
        };
        self.tasks
            .spawn("model-scan", scan, move |why| Msg::ScanFailed { generation, why });
        // Hashing only informs restoring pictures: a failure there is not worth a message.
        self.tasks.spawn("model-hashes", hash, move |_| Msg::Hashed {
            generation,
            hashes: Vec::new(),
        });
    }

    /// Starts (or resumes) downloading a catalog id or repo id.
    pub fn download(&mut self, state: &mut ModelsState, name_or_repo: &str) -> Result<(), String> {
        let hub = self.env.hub.clone()?;
        let catalog = self.catalog.clone().ok_or_else(|| t!("catalog-unavailable"))?;
        let request = DownloadRequest::resolve(name_or_repo, &catalog).map_err(|e| e.to_string())?;
        let repo_id = request.repo_id.clone();
        if state.download(&repo_id).is_some_and(DownloadView::is_active) {
            return Err(t!("already-downloading", repo = repo_id.as_str()));
        }
        let name = catalog
            .find(&repo_id)
            .map(|e| e.name.clone())
            .unwrap_or_else(|| repo_id.clone());
        let mut view = DownloadView::new(&repo_id, name_or_repo.trim(), &name);
        view.preview_decoder = catalog.find(&repo_id).is_some_and(|e| !e.is_pipeline());
        match state.downloads.iter_mut().find(|d| d.repo_id == repo_id) {
            Some(existing) => *existing = view,
            None => state.downloads.push(view),
        }
        let handle = spawn_download(hub, request);
        self.cancels.retain(|(r, _)| *r != repo_id);
        self.cancels.push((repo_id.clone(), handle.cancel_flag()));
        // Forward the events so each one wakes the window (the handle's channel cannot). The
        // last one (finished, failed or cancelled) is the task's result; a download thread that
        // died before saying it ends in a failure instead of "downloading" forever.
        let events = self.tasks.sender();
        let failed = repo_id.clone();
        let forward = move || {
            let mut end = None;
            for event in handle.events.iter() {
                match event {
                    DownloadEvent::Finished { .. } | DownloadEvent::Failed { .. } | DownloadEvent::Cancelled => {
                        end = Some(event)
                    }
                    event => events.send(Msg::Download {
                        repo_id: repo_id.clone(),
                        event,
                    }),
                }
            }
            let joined = handle.join();
            let event = end.unwrap_or_else(|| {
                let message = joined
                    .err()
                    .map_or_else(|| "the download stopped unexpectedly".into(), |e| e.to_string());
                DownloadEvent::Failed(Failure::new(Kind::Internal, message))
            });
            Msg::Download { repo_id, event }
        };
        self.tasks.spawn("download-events", forward, move |why| Msg::Download {
            repo_id: failed,
            event: DownloadEvent::Failed(Failure::new(Kind::Internal, why)),
        });
        Ok(())
    }

    /// Stops a download at its next chunk; the partial file stays for resuming.
    pub fn cancel(&mut self, repo_id: &str) {
        if let Some((_, flag)) = self.cancels.iter().find(|(r, _)| r == repo_id) {
            flag.cancel();
        }
    }

    /// Describes a folder off the UI thread (for a model chosen by hand).
    pub fn describe(&self, path: &Path) {
        let path = path.to_path_buf();
        let catalog = self.catalog.clone();
        let failed = path.clone();
        let describe = move || {
            let name = crate::model::display_name(&path);
            let source = hf_cache_source(&path).unwrap_or(ModelSource::UserFolder);
            let model = crate::hub::discovery::describe(&path, name, source, catalog.as_ref());
            Msg::Described { path, model }
        };
        // A panic leaves the model undescribed (logged): no recommended settings, nothing waits.
        self.tasks.spawn("describe-model", describe, move |_| Msg::Described {
            path: failed,
            model: None,
        });
    }

    /// Folds in whatever the threads reported.
    pub fn poll(&mut self, state: &mut ModelsState) -> Vec<ModelsNotice> {
        let mut notices = Vec::new();
        while let Some(msg) = self.tasks.try_recv() {
            match msg {
                Msg::Scanned {
                    generation,
                    models,
                    vaes,
                    loras,
                    embeddings,
                    taesds,
                } => {
                    if generation == self.scan_generation {
                        state.local = models;
                        state.vaes = vaes;
                        state.loras = loras;
                        state.embeddings = embeddings;
                        state.taesds = taesds;
                        state.scan = ScanState::Done;
                        state.scans_done += 1;
                    }
                }
                Msg::Hashed { generation, hashes } => {
                    if generation == self.scan_generation {
                        state.hashes.extend(hashes);
                    }
                }
                Msg::ScanFailed { generation, why } => {
                    if generation == self.scan_generation {
                        state.scan = ScanState::Done;
                        state.scans_done += 1;
                        notices.push(ModelsNotice::ScanFailed(why));
                    }
                }
                Msg::Download { repo_id, event } => {
                    let Some(view) = state.downloads.iter_mut().find(|d| d.repo_id == repo_id) else {
                        continue;
                    };
                    view.apply(event);
                    match &view.phase {
                        DownloadPhase::Finished { snapshot } => notices.push(ModelsNotice::DownloadFinished {
                            name: view.name.clone(),
                            snapshot: snapshot.clone(),
                        }),
                        DownloadPhase::Failed(failure) => notices.push(ModelsNotice::DownloadFailed {
                            name: view.name.clone(),
                            failure: failure.clone(),
                        }),
                        DownloadPhase::Cancelled => notices.push(ModelsNotice::DownloadCancelled {
                            name: view.name.clone(),
                        }),
                        DownloadPhase::Connecting | DownloadPhase::Running => {}
                    }
                }
                Msg::Described { model: Some(model), .. } => notices.push(ModelsNotice::Described(model)),
                Msg::Described { path, model: None } => {
                    tracing::debug!(path = %path.display(), "not a model folder Lantern can describe")
                }
            }
        }
        notices
    }
}

/// A snapshot folder inside a Hugging Face cache (`models--ORG--NAME/snapshots/REV`) is
/// recognised as such, so its repo id finds its catalog entry.
fn hf_cache_source(path: &Path) -> Option<ModelSource> {
    let (repo_id, commit) = hf_cache::snapshot_of(path)?;
    Some(ModelSource::HfCache {
        repo_id,
        commit,
        refs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Family, Progress};

    #[test]
    fn download_view_folds_events_into_progress() {
        let mut v = DownloadView::new("a/b", "a/b", "a/b");
        v.apply(DownloadEvent::Planned {
            repo_id: "a/b".into(),
            commit: "c".into(),
            files: 2,
            total: 1000,
            already: 100,
            size_only: 1,
        });
        assert_eq!((v.phase.clone(), v.done, v.total), (DownloadPhase::Running, 100, 1000));
        assert_eq!(
            v.size_only_note().as_deref(),
            Some("1 small file (no hash from the Hub) is checked by size only")
        );
        v.apply(DownloadEvent::Progress(Progress {
            file: "unet/x.safetensors".into(),
            file_done: 250,
            file_size: 500,
            done: 600,
            total: 1000,
            bytes_per_sec: 2_000_000.0,
            eta: Some(Duration::from_secs(90)),
        }));
        assert_eq!(v.fraction(), 0.6);
        assert_eq!(v.file_fraction(), 0.5);
        assert_eq!(v.summary(), "600 B of 1.0 kB · 2.0 MB/s · 1:30 left");
        v.apply(DownloadEvent::Failed(Failure::new(
            Kind::Offline,
            "cannot reach 127.0.0.1:9: connection refused. Check…",
        )));
        assert!(v.can_resume());
        match &v.phase {
            DownloadPhase::Failed(failure) => {
                let message = plain_download_error(failure);
                assert!(message.starts_with("You seem to be offline"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            plain_download_error(&Failure::new(Kind::Checksum, "a/b unet: sha256 mismatch")),
            "a/b unet: sha256 mismatch"
        );
    }

    #[test]
    fn offline_is_decided_by_the_kind_not_by_the_words() {
        // Reworded so that none of the old phrases ("cannot reach", "connection refused", …)
        // appears: still the offline sentence, with the line kept as the detail.
        let reworded = Failure::new(Kind::Offline, "the Hub at 127.0.0.1:9 is out of reach");
        assert_eq!(
            download_failure_parts(&reworded),
            (offline_headline(), Some("the Hub at 127.0.0.1:9 is out of reach"))
        );
        assert_eq!(
            plain_download_error(&reworded),
            format!("{} (the Hub at 127.0.0.1:9 is out of reach)", offline_headline())
        );
        // Words that used to mean offline do not make another kind offline.
        let server = Failure::new(
            Kind::Network,
            "a/b unet: cannot reach the end of the file: connection refused mid-way",
        );
        assert_eq!(download_failure_parts(&server), (server.message.clone(), None));
        for kind in [Kind::Unauthorized, Kind::NotFound, Kind::Checksum, Kind::DiskFull] {
            let f = Failure::new(kind, "no answer within 30 s");
            assert_eq!(plain_download_error(&f), "no answer within 30 s", "{kind:?}");
        }
    }

    #[test]
    fn recommendations_come_from_the_catalog_and_are_described() {
        let catalog = Catalog::builtin().unwrap();
        let model = LocalModel {
            name: "x".into(),
            path: "/x".into(),
            source: ModelSource::UserFolder,
            family: Family::SdTurbo,
            family_label: "SD-Turbo",
            base: crate::hub::BaseArch::Sd2,
            pipeline: "StableDiffusionPipeline".into(),
            prediction_type: "epsilon".into(),
            size: ByteSize(1),
            precision: crate::hub::Precision::Fp16,
            status: crate::hub::ModelStatus::Complete,
            catalog_id: None,
            needs_vae: false,
            needs_text_encoder: false,
        };
        let (from, r) = recommendation(&catalog, &model).unwrap();
        assert_eq!(from, "SD-Turbo");
        let mut params = Recipe::default();
        let said = apply_recommended(&mut params, from, r);
        assert_eq!((params.steps, params.guidance), (1, 0.0));
        assert!(
            said.starts_with("applied SD-Turbo's recommended settings: 1 step, guidance 0,"),
            "{said}"
        );
    }

    #[test]
    fn cache_snapshots_are_recognised_by_path() {
        let p = Path::new("/c/models--stabilityai--sd-turbo/snapshots/abc");
        assert!(
            matches!(hf_cache_source(p), Some(ModelSource::HfCache { repo_id, .. }) if repo_id == "stabilityai/sd-turbo")
        );
        assert!(hf_cache_source(Path::new("/c/sd-turbo")).is_none());
    }
}
