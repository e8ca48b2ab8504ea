//! Everything the window shows, as plain data. Panels read and change it and ask for
//! [`Action`]s; only the app talks to the worker.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Kind;
use crate::model::LoadStage;
use crate::recipe::Recipe;
use crate::text::ClipTokenizer;
use crate::worker::ModelInfo;

use super::history_state::{HistoryAction, HistoryView};
use super::i18n::{Catalog, Language};
use super::loras_state::LoraBrowser;
use super::models_state::ModelsState;
use super::settings::Settings;

/// What a panel wants done; handled by the app after drawing.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Generate,
    Cancel,
    RemoveQueued(u64),
    ChooseModel(PathBuf),
    OpenModelDialog,
    SaveAs,
    CopyImage,
    ShowInFolder,
    /// Restore every parameter (and the model) from a picture's metadata.
    UseSettings(Box<Recipe>),
    /// Look for models on disk again (the user's folders included).
    Rescan,
    /// Open or close the About window.
    ToggleAbout,
    /// Switch the window's language (a code from `AppState::languages`).
    SetLanguage(String),
    /// Start, or resume, downloading a catalog id or Hub repo id.
    Download(String),
    /// Stop the download of this repo id (its partial files stay for resuming).
    CancelDownload(String),
    /// Forget a stopped download's card.
    DismissDownload(String),
    OpenModelManager,
    /// Load the chosen model again with this VAE / prediction choice.
    SetModelChoice(crate::gui::settings::ModelChoice),
    /// Something in the history view (browse, restore, favourite, delete, …).
    History(HistoryAction),
    /// Open the data folder's `loras/` in the file manager (made first if need be).
    OpenLoraFolder,
    /// Show or hide the LoRA browser (remembered in the settings).
    ToggleLoras,
    /// Something about the start picture (img2img, inpainting).
    Start(super::start_state::StartAction),
}

#[derive(Clone, Debug)]
pub enum ModelStatus {
    /// No model chosen yet (first run).
    None,
    Loading {
        path: PathBuf,
        stage: Option<LoadStage>,
    },
    Ready(ModelInfo),
    Failed {
        path: PathBuf,
        /// What kind of failure the worker reported (a model it cannot use, a file it cannot
        /// read, an internal error).
        kind: Kind,
        message: String,
    },
}

/// A job waiting for the worker.
#[derive(Clone, Debug)]
pub struct QueuedJob {
    pub id: u64,
    pub label: String,
    pub request: crate::pipeline::Request,
    pub model: PathBuf,
}

/// The job the worker is on.
pub struct RunningJob {
    pub id: u64,
    pub label: String,
    pub image: u32,
    pub batch: u32,
    pub step: usize,
    pub total: usize,
    pub elapsed: Duration,
    pub eta: Duration,
    pub decoding: bool,
    pub preview: Option<egui::TextureHandle>,
    /// Picture pixels per preview pixel: 8 for the linear approximation, 1 for a TAESD's.
    pub preview_scale: f32,
    pub started: Instant,
}

/// A finished picture on screen.
pub struct ShownImage {
    pub texture: egui::TextureHandle,
    pub pixels: Arc<crate::output::RgbImage>,
    pub params: Recipe,
    pub path: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Zoom {
    Fit,
    Scale(f32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusKind {
    Info,
    Warning,
    Error,
}

#[derive(Clone, Debug)]
pub struct StatusLine {
    pub kind: StatusKind,
    pub text: String,
}

/// Frame timing, to show the window keeps drawing while the worker is busy.
#[derive(Debug, Default)]
pub struct FrameStats {
    pub last: Option<Instant>,
    /// Seconds between frames while a job ran.
    pub intervals_busy: Vec<f32>,
    /// Seconds the UI thread spent building each of those frames (events, panels, textures).
    pub work_busy: Vec<f32>,
}

pub struct AppState {
    pub settings: Settings,
    pub model: ModelStatus,
    pub tokenizer: Option<Arc<ClipTokenizer>>,
    /// The prompt boxes' token counts, kept until their text changes.
    pub token_counters: super::token_counter::TokenCounters,
    pub queue: VecDeque<QueuedJob>,
    pub running: Option<RunningJob>,
    /// The pictures of the latest job (several for a batch).
    pub images: Vec<ShownImage>,
    pub selected: usize,
    pub zoom: Zoom,
    pub pan: egui::Vec2,
    pub status: Option<StatusLine>,
    pub last_seed: Option<u64>,
    /// The model path typed by hand when no file dialog is available.
    pub model_path_input: String,
    pub frame_stats: FrameStats,
    /// Models on disk, the catalog and downloads (see `models_state`).
    pub models: ModelsState,
    /// The history view: filters, results, thumbnails, the opened entry.
    pub history: HistoryView,
    /// The languages the window can speak, and the one it speaks.
    pub languages: Vec<Language>,
    pub catalog: Arc<Catalog>,
    /// Whether a font with Chinese characters was found (`None`: fonts not installed by us,
    /// as in tests).
    pub cjk_font: Option<bool>,
    pub about_open: bool,
    /// Whether the model's load options (VAE, prediction) are shown under the picker.
    pub model_options_open: bool,
    /// The LoRA browser: filter, preview thumbnails.
    pub loras: LoraBrowser,
    /// The picture img2img and inpainting start from.
    pub start: super::start_state::StartState,
}

impl AppState {
    pub fn new(settings: Settings) -> AppState {
        AppState {
            settings,
            model: ModelStatus::None,
            tokenizer: None,
            token_counters: Default::default(),
            queue: VecDeque::new(),
            running: None,
            images: Vec::new(),
            selected: 0,
            zoom: Zoom::Fit,
            pan: egui::Vec2::ZERO,
            status: None,
            last_seed: None,
            model_path_input: String::new(),
            frame_stats: FrameStats::default(),
            models: ModelsState::default(),
            history: HistoryView::default(),
            languages: super::i18n::available_languages(None),
            catalog: Catalog::english(),
            cjk_font: None,
            about_open: false,
            model_options_open: false,
            loras: LoraBrowser::default(),
            start: Default::default(),
        }
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.status = Some(StatusLine {
            kind: StatusKind::Info,
            text: text.into(),
        });
    }

    pub fn warn(&mut self, text: impl Into<String>) {
        self.status = Some(StatusLine {
            kind: StatusKind::Warning,
            text: text.into(),
        });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.status = Some(StatusLine {
            kind: StatusKind::Error,
            text: text.into(),
        });
    }

    pub fn is_busy(&self) -> bool {
        self.running.is_some() || !self.queue.is_empty()
    }

    pub fn selected_image(&self) -> Option<&ShownImage> {
        self.images.get(self.selected)
    }

    /// The model the next job will use: the chosen one, loaded or not.
    pub fn model_path(&self) -> Option<PathBuf> {
        self.settings.model.clone()
    }
}
