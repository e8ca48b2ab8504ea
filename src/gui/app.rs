//! The eframe app: draws the panels, turns their actions into worker jobs, and folds worker
//! events back into the state. Nothing here blocks: loading, sampling, saving and file
//! dialogs all run on other threads.

mod history;
mod loras;
mod start;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::models_state::{
    ModelsController, ModelsEnv, ModelsNotice, apply_recommended, plain_download_error, readable_load_error,
    recommendation,
};
use super::panels;
use super::settings::Settings;
use super::state::{Action, AppState, ModelStatus, QueuedJob, RunningJob, ShownImage};
use super::tasks::Tasks;
use crate::model::LoadOptions;
use crate::output::RgbImage;
use crate::output::atomic::{Existing, write_atomic};
use crate::paths::DataDir;
use crate::pipeline::Request;
use crate::pipeline::noise::random_seed;
use crate::recipe::Recipe;
use crate::save::HistoryLocation;
use crate::t;
use crate::text::ClipTokenizer;
use crate::worker::{GenerateJob, Job, Outcome, Worker, WorkerEvent};

/// Results from helper threads (file dialogs, tokenizer loading, copies).
enum Background {
    ModelFolderPicked {
        path: Option<PathBuf>,
        took: Duration,
    },
    SavedAs(Result<PathBuf, String>),
    Tokenizer {
        model: PathBuf,
        tokenizer: Option<Arc<ClipTokenizer>>,
    },
    /// One of them panicked (the text says which and why).
    Failed(String),
}

pub struct AppOptions {
    /// `lantern --model DIR`: open with this model chosen.
    pub model: Option<PathBuf>,
    /// Where settings, outputs and the history live (`LANTERN_DATA_DIR` or the platform's).
    pub data_dir: PathBuf,
}

impl AppOptions {
    pub fn data(&self) -> DataDir {
        DataDir::at(&self.data_dir)
    }
}

pub struct LanternApp {
    pub state: AppState,
    worker: Worker,
    next_id: u64,
    /// Where settings, outputs, the history and thumbnails live.
    pub data: DataDir,
    background: Tasks<Background>,
    /// The start picture's file reading, keeping and previewing.
    start_tasks: Tasks<start::StartMsg>,
    ctx: egui::Context,
    /// Show the "type a path" window (no native file dialog available).
    ask_model_path: bool,
    /// Model scans and downloads on background threads.
    models: ModelsController,
    /// The history view's query thread and thumbnail loader.
    history: history::HistoryRuntime,
    /// Makes the LoRA browser's preview thumbnails.
    lora_previews: super::thumb_loader::ThumbLoader,
    /// The separate VAE the last load asked for (a borrowed one is retried at most once).
    last_load_vae: Option<PathBuf>,
}

impl LanternApp {
    pub fn new(ctx: &egui::Context, options: AppOptions) -> LanternApp {
        let env = ModelsEnv::standard(&options.data());
        LanternApp::with_models_env(ctx, options, env)
    }

    /// [`LanternApp::new`] looking for and downloading models only where `env` says (tests use
    /// a temporary Hugging Face cache and a local Hub instead of the process environment).
    pub fn with_models_env(ctx: &egui::Context, options: AppOptions, env: ModelsEnv) -> LanternApp {
        let data = options.data();
        let settings = Settings::load(&data.settings_file());
        let wake_ctx = ctx.clone();
        let worker = Worker::spawn(move || wake_ctx.request_repaint());
        let history = history::HistoryRuntime::start(ctx, &data, settings.output_dir(&data));
        let mut state = AppState::new(settings);
        state.languages = super::i18n::available_languages(Some(&data.locales()));
        let language = match &state.settings.language {
            Some(code) if state.languages.iter().any(|l| &l.code == code) => code.clone(),
            _ => super::i18n::language_for_locale(super::i18n::system_locale().as_deref(), &state.languages),
        };
        set_language(&mut state, &language);
        state.loras.folder = data.loras();
        let models = ModelsController::new(ctx, env, &mut state.models);
        let lora_previews = loras::preview_loader(ctx, &data);
        let mut app = LanternApp {
            state,
            worker,
            next_id: 1,
            data,
            background: Tasks::new(ctx),
            start_tasks: Tasks::new(ctx),
            ctx: ctx.clone(),
            ask_model_path: false,
            models,
            history,
            lora_previews,
            last_load_vae: None,
        };
        if let Some(model) = options.model.or_else(|| app.state.settings.model.clone()) {
            app.choose_model(model);
        }
        // The start picture the settings name, fetched from the data folder.
        let params = &app.state.settings.params;
        let (image, mask) = (params.init_image.clone(), params.mask.clone());
        if image.is_some() {
            app.restore_start(image, mask);
        }
        // After the choice: a model opened from the command line is among the user's folders,
        // and the scan lists what sits beside it (its VAEs).
        app.rescan();
        app
    }

    /// Whether nothing is loading, running or queued (tests wait for this).
    pub fn is_idle(&self) -> bool {
        !self.state.is_busy() && !matches!(self.state.model, ModelStatus::Loading { .. })
    }

    /// Looks for models again, the user's own folders included (off the UI thread).
    fn rescan(&mut self) {
        self.models.rescan(
            &mut self.state.models,
            &self.state.settings.user_models,
            (&[self.data.loras()], &[self.data.embeddings()]),
            self.state.settings.precision.dtype(),
        );
    }

    /// A model chosen by the user (not restored from the settings): also applies the catalog's
    /// recommended settings for it, once its description is known.
    fn pick_model(&mut self, path: PathBuf) {
        let known = self.state.settings.user_models.len();
        self.choose_model(path);
        let Some(path) = self.state.settings.model.clone() else {
            return;
        };
        match self.state.models.find_local(&path).cloned() {
            Some(model) => {
                // A file without its VAE cannot load until one is chosen: show where.
                let chosen = self.state.settings.choice_for(&path).vae;
                if self.state.models.needs_vae_choice(&path, chosen.as_deref()) {
                    self.state.model_options_open = true;
                }
                self.apply_recommendation(&model)
            }
            None => self.models.describe(&path),
        }
        if self.state.settings.user_models.len() != known {
            self.rescan(); // list the newly opened folder
        }
    }

    fn apply_recommendation(&mut self, model: &crate::hub::LocalModel) {
        if self.state.settings.model.as_ref() != Some(&model.path) {
            return; // another model was chosen meanwhile
        }
        let Some((from, settings)) = self.models.catalog().and_then(|c| recommendation(c, model)) else {
            return;
        };
        let said = apply_recommended(&mut self.state.settings.params, from, settings);
        match &self.state.model {
            ModelStatus::Ready(info) => {
                let text = t!("model-ready-applied", name = info.name.as_str(), applied = said);
                self.state.info(text);
            }
            _ => self.state.models.applied_note = Some((model.path.clone(), said)),
        }
    }

    fn handle_models_notice(&mut self, notice: ModelsNotice) {
        match notice {
            ModelsNotice::DownloadFinished { name, .. } => {
                self.state.info(t!("notice-downloaded", name = name.as_str()));
                self.rescan();
            }
            ModelsNotice::DownloadFailed { name, failure } => {
                self.state.error(t!(
                    "notice-download-failed",
                    name = name.as_str(),
                    reason = plain_download_error(&failure)
                ));
                self.rescan(); // a partial download is listed, with a way to resume it
            }
            ModelsNotice::DownloadCancelled { name } => {
                self.state.info(t!("notice-download-cancelled", name = name.as_str()));
                self.rescan();
            }
            ModelsNotice::Described(model) => self.apply_recommendation(&model),
            ModelsNotice::ScanFailed(why) => self.state.error(t!("notice-scan-failed", reason = why.to_string())),
        }
    }

    fn choose_model(&mut self, path: PathBuf) {
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        if !self.state.settings.user_models.contains(&path) {
            self.state.settings.user_models.push(path.clone());
        }
        self.state.settings.model = Some(path.clone());
        self.state.model = ModelStatus::Loading {
            path: path.clone(),
            stage: None,
        };
        self.state.tokenizer = None;
        let options = self.load_options(&path);
        self.last_load_vae = options.vae.clone();
        self.worker.submit(Job::Load {
            model: path.clone(),
            options,
        });
        let load = move || {
            let tokenizer = crate::model::ModelFolder::open(&path)
                .and_then(|f| f.prompt_tokenizer())
                .ok()
                .map(Arc::new);
            Background::Tokenizer { model: path, tokenizer }
        };
        self.background.spawn("tokenizer", load, Background::Failed);
        self.save_settings();
    }

    /// The chosen model failed to load before the scan found a model of its family that can lend
    /// it a VAE (a checkpoint without one, opened at start): load it again, now with that VAE.
    fn retry_with_borrowed_vae(&mut self) {
        let Some(path) = self.state.settings.model.clone() else {
            return;
        };
        let failed = matches!(self.state.model, ModelStatus::Failed { .. });
        let chosen = self.state.settings.choice_for(&path).vae;
        let tried_without = self.last_load_vae.is_none();
        if failed && tried_without && chosen.is_none() && self.state.models.vae_donor(&path).is_some() {
            self.choose_model(path);
        }
    }

    /// How `model` is loaded: the window's precision and the user's choices for that model.
    fn load_options(&self, model: &Path) -> LoadOptions {
        let choice = self.state.settings.choice_for(model);
        LoadOptions {
            dtype: self.state.settings.precision.dtype(),
            device: candle_core::Device::Cpu,
            // A file without a VAE, none chosen: the same family's, as the options panel says.
            vae: choice
                .vae
                .or_else(|| self.state.models.vae_donor(model).map(|d| d.path.join("vae"))),
            prediction: choice.prediction,
            text_encoders: self.state.models.text_encoder_donor(model).map(|d| d.path.clone()),
            taesd: self.state.models.taesd_for(model).map(|t| t.path.clone()),
        }
    }

    fn save_settings(&self) {
        if let Err(e) = self.state.settings.save(&self.data.settings_file()) {
            tracing::warn!("could not save settings: {e}");
        }
    }

    /// The request the current parameters describe; an unlocked seed is drawn now.
    fn request(&self) -> Request {
        let settings = &self.state.settings;
        let mut recipe = settings.params.clone();
        if !settings.seed_locked {
            recipe.seed = random_seed();
        }
        Request {
            previews: true,
            source: self.state.start.source(),
            lora_files: self.state.models.loras.iter().map(|l| l.path.clone()).collect(),
            embedding_files: self.state.models.embeddings.iter().map(|e| e.path.clone()).collect(),
            ..Request::new(recipe)
        }
    }

    fn enqueue(&mut self) {
        let Some(model) = self.state.model_path() else {
            self.state.error(t!("choose-model-first"));
            return;
        };
        if self.state.settings.params.init_image.is_some() && self.state.start.picture.is_none() {
            self.state.error(t!("start-still-loading"));
            return;
        }
        let request = self.request();
        if let Err(e) = request.recipe.validate() {
            self.state.error(e.to_string());
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let label = job_label(&request);
        self.state.queue.push_back(QueuedJob {
            id,
            label,
            request,
            model,
        });
        self.save_settings();
        self.start_next();
    }

    fn start_next(&mut self) {
        if self.state.running.is_some() {
            return;
        }
        let Some(job) = self.state.queue.pop_front() else {
            return;
        };
        self.state.running = Some(RunningJob {
            id: job.id,
            label: job.label.clone(),
            image: 0,
            batch: job.request.recipe.batch_size,
            step: 0,
            total: 0,
            elapsed: Duration::ZERO,
            eta: Duration::ZERO,
            decoding: false,
            preview: None,
            preview_scale: 8.0,
            started: Instant::now(),
        });
        self.worker.submit(Job::Generate(Box::new(GenerateJob {
            id: job.id,
            options: self.load_options(&job.model),
            model: job.model,
            request: job.request,
            output_dir: self.state.settings.output_dir(&self.data),
            history: Some(HistoryLocation::in_data_dir(
                &self.data,
                self.state.settings.output_dir(&self.data),
            )),
        })));
    }

    pub fn handle_action(&mut self, action: Action) {
        match action {
            Action::Generate => self.enqueue(),
            Action::Cancel => {
                if self.state.running.is_some() {
                    self.worker.cancel();
                    self.state.info(t!("cancelling"));
                }
            }
            Action::RemoveQueued(id) => self.state.queue.retain(|j| j.id != id),
            Action::ChooseModel(path) => self.pick_model(path),
            Action::SetModelChoice(choice) => {
                let model = choice.model.clone();
                self.state.settings.set_choice(choice);
                // The same model again, loaded the new way (the worker reloads on new options).
                self.choose_model(model);
            }
            Action::OpenModelDialog => {
                let pick = || {
                    let started = Instant::now();
                    let path = rfd::FileDialog::new()
                        .set_title(t!("open-model-folder-title"))
                        .pick_folder();
                    Background::ModelFolderPicked {
                        path,
                        took: started.elapsed(),
                    }
                };
                self.background.spawn("folder-dialog", pick, Background::Failed);
            }
            Action::SaveAs => self.save_as(),
            Action::CopyImage => {
                if let Some(img) = self.state.selected_image() {
                    let color = egui::ColorImage::from_rgb(
                        [img.pixels.width as usize, img.pixels.height as usize],
                        &img.pixels.data,
                    );
                    self.ctx.copy_image(color);
                    self.state.info(t!("image-copied"));
                }
            }
            Action::ShowInFolder => {
                if let Some(path) = self.state.selected_image().and_then(|i| i.path.clone())
                    && let Err(e) = reveal_in_folder(&path)
                {
                    self.state.warn(t!(
                        "file-manager-failed",
                        reason = e.to_string(),
                        path = path.display().to_string()
                    ));
                }
            }
            Action::UseSettings(params) => {
                self.use_settings(&params);
                self.note_missing_loras(&params);
            }
            Action::OpenLoraFolder => self.open_lora_folder(),
            Action::ToggleLoras => {
                self.state.settings.loras_open = !self.state.settings.loras_open;
                self.save_settings();
            }
            Action::Start(action) => self.handle_start_action(action),
            Action::Rescan => self.rescan(),
            Action::Download(name) => match self.models.download(&mut self.state.models, &name) {
                Ok(()) => self.state.info(t!("download-started", name = name.as_str())),
                Err(e) => self
                    .state
                    .error(t!("download-refused", name = name.as_str(), reason = e.to_string())),
            },
            Action::CancelDownload(repo_id) => self.models.cancel(&repo_id),
            Action::DismissDownload(repo_id) => {
                self.state
                    .models
                    .downloads
                    .retain(|d| d.repo_id != repo_id || d.is_active());
            }
            Action::OpenModelManager => self.state.models.manager_open = true,
            Action::ToggleAbout => self.state.about_open = !self.state.about_open,
            Action::SetLanguage(code) => {
                set_language(&mut self.state, &code);
                self.state.settings.language = Some(code);
                self.save_settings();
            }
            Action::History(action) => self.handle_history_action(action),
        }
    }

    /// Restores every parameter of a picture, including its seed (locked).
    pub fn use_settings(&mut self, params: &Recipe) {
        self.restore_recipe(params);
        self.state.info(t!("settings-restored", seed = params.seed.to_string()));
    }

    /// Puts a picture's whole recipe into the editor, seed locked, batch size kept (the user's
    /// own choice of how many to make next).
    fn restore_recipe(&mut self, recipe: &Recipe) {
        let settings = &mut self.state.settings;
        let batch_size = settings.params.batch_size;
        settings.params = Recipe {
            batch_size,
            // Fields we do not interpret would be written into the new picture unchanged,
            // claiming settings it was not made with.
            extra: Vec::new(),
            ..recipe.as_single()
        };
        settings.seed_locked = true;
        self.restore_start(recipe.init_image.clone(), recipe.mask.clone());
    }

    fn save_as(&mut self) {
        let Some(source) = self.state.selected_image().and_then(|i| i.path.clone()) else {
            return;
        };
        let save = move || {
            let name = source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image.png".into());
            let result = match rfd::FileDialog::new()
                .set_file_name(&name)
                .add_filter(t!("png-image"), &["png"])
                .save_file()
            {
                None => Err(t!("save-as-no-file")),
                Some(dest) => std::fs::read(&source)
                    .map_err(|e| crate::Error::io(&source, e))
                    .and_then(|bytes| write_atomic(&dest, &bytes, Existing::Replace))
                    .map(|_| dest)
                    .map_err(|e| e.to_string()),
            };
            Background::SavedAs(result)
        };
        self.background
            .spawn("save-as", save, |why| Background::SavedAs(Err(why)));
    }

    fn handle_background(&mut self, msg: Background) {
        match msg {
            Background::ModelFolderPicked { path: Some(path), .. } => self.pick_model(path),
            Background::ModelFolderPicked { path: None, took } => {
                // An instant "no" means there is no dialog service: offer a path field instead.
                if took < Duration::from_millis(400) {
                    self.ask_model_path = true;
                }
            }
            Background::SavedAs(Ok(path)) => self.state.info(t!("saved-copy", path = path.display().to_string())),
            Background::SavedAs(Err(e)) => self.state.warn(t!("not-saved", reason = e)),
            Background::Tokenizer { model, tokenizer } => {
                if self.state.settings.model.as_ref() == Some(&model) {
                    self.state.tokenizer = tokenizer;
                }
            }
            Background::Failed(why) => self.state.error(why),
        }
    }

    fn handle_worker_event(&mut self, event: WorkerEvent) {
        let state = &mut self.state;
        match event {
            WorkerEvent::Loading { model, stage } => {
                state.model = ModelStatus::Loading {
                    path: model,
                    stage: Some(stage),
                }
            }
            WorkerEvent::Loaded(info) => {
                let note = state.models.applied_note.take();
                let note = note
                    .filter(|(path, _)| state.settings.model.as_ref() == Some(path))
                    .map(|(_, said)| said)
                    .or_else(|| borrowed_parts_note(state, &info.path));
                match note {
                    Some(said) => state.info(t!("model-ready-applied", name = info.name.as_str(), applied = said)),
                    None => state.info(t!("model-ready", name = info.name.as_str())),
                }
                state.models.hashes.insert(info.path.clone(), info.hash.clone());
                state.model = ModelStatus::Ready(info);
            }
            WorkerEvent::LoadFailed { model, failure } => {
                state.models.applied_note = None;
                state.error(readable_load_error(&model, &failure.message));
                state.model = ModelStatus::Failed {
                    path: model,
                    kind: failure.kind,
                    message: failure.message,
                };
                self.retry_with_borrowed_vae();
            }
            WorkerEvent::Started { .. } => {}
            WorkerEvent::Progress {
                id,
                image,
                batch,
                step,
                total,
                elapsed,
                eta,
            } => {
                if let Some(run) = state.running.as_mut().filter(|r| r.id == id) {
                    if image != run.image {
                        run.preview = None;
                    }
                    run.image = image;
                    run.batch = batch;
                    run.step = step;
                    run.total = total;
                    run.elapsed = elapsed;
                    run.eta = eta;
                    run.decoding = false;
                }
            }
            WorkerEvent::Preview { id, preview, scale, .. } => {
                if let Some(run) = state.running.as_mut().filter(|r| r.id == id) {
                    run.preview_scale = scale as f32;
                    let color = to_color_image(&preview);
                    match &mut run.preview {
                        Some(tex) => tex.set(color, egui::TextureOptions::LINEAR),
                        None => {
                            run.preview = Some(self.ctx.load_texture("preview", color, egui::TextureOptions::LINEAR))
                        }
                    }
                }
            }
            WorkerEvent::Decoding { id, .. } => {
                if let Some(run) = state.running.as_mut().filter(|r| r.id == id) {
                    run.decoding = true;
                }
            }
            WorkerEvent::Warning { message, .. } => state.warn(message),
            WorkerEvent::Notice(message) => state.warn(message),
            WorkerEvent::Recorded { .. } => self.history_recorded(),
            WorkerEvent::Image { generated, saved, .. } => {
                let first_of_job = generated.params.batch_index == 0;
                if first_of_job {
                    state.images.clear();
                    state.selected = 0;
                }
                let pixels = Arc::new(generated.image);
                let texture = self.ctx.load_texture(
                    format!("image-{}", generated.params.seed),
                    to_color_image(&pixels),
                    egui::TextureOptions::LINEAR,
                );
                state.last_seed = Some(generated.params.seed);
                let path = match saved {
                    Ok(path) => {
                        state.info(t!("saved", path = path.display().to_string()));
                        Some(path)
                    }
                    Err(e) => {
                        state.error(t!("image-not-saved", reason = e.to_string()));
                        None
                    }
                };
                state.images.push(ShownImage {
                    texture,
                    pixels,
                    params: generated.params,
                    path,
                });
                state.selected = state.images.len() - 1;
                if let Some(run) = state.running.as_mut() {
                    run.preview = None;
                }
            }
            WorkerEvent::Finished { id, outcome } => {
                if state.running.as_ref().is_some_and(|r| r.id == id) {
                    let took = state.running.take().map(|r| r.started.elapsed()).unwrap_or_default();
                    match outcome {
                        Outcome::Done => {
                            let saved = state.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
                            state.info(format!("{saved} ({:.1} s)", took.as_secs_f32()));
                        }
                        Outcome::Cancelled => state.info(t!("cancelled")),
                        Outcome::Failed(failure) => state.error(failure.message),
                    }
                }
                self.start_next();
            }
        }
    }

    fn record_frame(&mut self) {
        let now = Instant::now();
        let busy = self.state.running.is_some();
        let stats = &mut self.state.frame_stats;
        if let Some(last) = stats.last
            && busy
        {
            stats.intervals_busy.push((now - last).as_secs_f32());
        }
        stats.last = Some(now);
    }

    fn path_window(&mut self, ctx: &egui::Context, actions: &mut Vec<Action>) {
        if !self.ask_model_path {
            return;
        }
        let mut open = true;
        egui::Window::new(t!("open-model-folder-title"))
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| {
                ui.label(t!("no-file-dialog"));
                let r = ui.add(egui::TextEdit::singleline(&mut self.state.model_path_input).desired_width(380.0));
                let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if (ui.button(t!("open")).clicked() || enter) && !self.state.model_path_input.trim().is_empty() {
                    actions.push(Action::ChooseModel(self.state.model_path_input.trim().into()));
                    self.ask_model_path = false;
                }
            });
        if !open {
            self.ask_model_path = false;
        }
    }

    /// Draws one frame (shared by eframe and the tests).
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        self.record_frame();
        let started = Instant::now();
        self.build_frame(ui);
        if self.state.running.is_some() {
            self.state.frame_stats.work_busy.push(started.elapsed().as_secs_f32());
        }
    }

    fn build_frame(&mut self, ui: &mut egui::Ui) {
        // Everything drawn or said from here on is in the chosen language.
        super::i18n::set_current(self.state.catalog.clone());
        while let Some(msg) = self.background.try_recv() {
            self.handle_background(msg);
        }
        while let Some(event) = self.worker.try_recv() {
            self.handle_worker_event(event);
        }
        let scans = self.state.models.scans_done;
        for notice in self.models.poll(&mut self.state.models) {
            self.handle_models_notice(notice);
        }
        if self.state.models.scans_done != scans {
            self.retry_with_borrowed_vae();
        }
        self.poll_history();
        self.poll_lora_previews();
        self.poll_start();
        self.take_dropped_files(ui);
        self.take_pasted_pictures(ui);
        let mut actions = Vec::new();
        let quit = egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::Q);
        if ui.input_mut(|i| i.consume_shortcut(&quit)) {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
        egui::Panel::bottom("status").show(ui, |ui| panels::status::show(ui, &self.state));
        if !self.history_panels(ui, &mut actions) {
            egui::Panel::left("parameters")
                .resizable(true)
                .default_size(340.0)
                .show(ui, |ui| panels::parameters::show(ui, &mut self.state, &mut actions));
            if self.state.settings.loras_open {
                egui::Panel::right("loras")
                    .resizable(true)
                    .default_size(300.0)
                    .min_size(240.0)
                    .show(ui, |ui| panels::loras::show(ui, &mut self.state, &mut actions));
            }
            egui::CentralPanel::default().show(ui, |ui| {
                if self.state.settings.model.is_none()
                    || (matches!(self.state.model, ModelStatus::Failed { .. }) && self.state.images.is_empty())
                {
                    panels::welcome::show(ui, &mut self.state, &mut actions);
                } else if self.state.start.painter.is_some() {
                    panels::mask_painter::show(ui, &mut self.state, &mut actions);
                } else {
                    panels::image_view::show(ui, &mut self.state, &mut actions);
                }
            });
        }
        let ctx = ui.ctx().clone();
        self.path_window(&ctx, &mut actions);
        if self.state.about_open {
            panels::about::window(&ctx, &mut self.state, &self.data);
        }
        if self.state.models.manager_open {
            panels::models::manager_window(&ctx, &mut self.state, &mut actions);
        }
        for action in actions {
            self.handle_action(action);
        }
        self.sync_history();
        self.sync_lora_previews();
        if self.state.running.is_some() || matches!(self.state.model, ModelStatus::Loading { .. }) {
            // Keep the elapsed time and spinner moving even between worker events.
            ctx.request_repaint_after(Duration::from_millis(200));
        }
    }

    /// Frame intervals measured while a job ran (for the frame-time report).
    pub fn busy_frame_intervals(&self) -> &[f32] {
        &self.state.frame_stats.intervals_busy
    }
}

impl eframe::App for LanternApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame(ui);
    }

    fn save(&mut self, _storage: &mut dyn eframe::Storage) {
        self.save_settings();
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.save_settings();
        if let Some(path) = std::env::var_os("LANTERN_FRAME_STATS") {
            let stats = &self.state.frame_stats;
            let report = format!(
                "{}UI work per frame while busy: {}",
                frame_report(&stats.intervals_busy),
                frame_report(&stats.work_busy)
            );
            let _ = std::fs::write(path, report);
        }
    }
}

/// Frame-interval summary while busy: count, mean, p95 and max in milliseconds.
pub fn frame_report(intervals: &[f32]) -> String {
    if intervals.is_empty() {
        return "no frames recorded while busy\n".into();
    }
    let mut v: Vec<f32> = intervals.iter().map(|s| s * 1000.0).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    let p95 = v[((v.len() as f32 * 0.95) as usize).min(v.len() - 1)];
    format!(
        "frames while busy: {}, mean {:.1} ms, p95 {:.1} ms, max {:.1} ms\n",
        v.len(),
        mean,
        p95,
        v[v.len() - 1]
    )
}

fn job_label(request: &Request) -> String {
    let r = &request.recipe;
    let mut prompt: String = r.prompt.chars().take(40).collect();
    if r.prompt.chars().count() > 40 {
        prompt.push('…');
    }
    if prompt.trim().is_empty() {
        prompt = t!("empty-prompt");
    }
    let batch = if r.batch_size > 1 {
        format!(" ×{}", r.batch_size)
    } else {
        String::new()
    };
    t!(
        "job-label",
        prompt = format!("{prompt}{batch}"),
        width = r.width,
        height = r.height,
        steps = r.steps
    )
}

/// Makes `code` the window's language (English when it is not among the known ones).
fn set_language(state: &mut AppState, code: &str) {
    state.catalog = match state.languages.iter().find(|l| l.code == code) {
        Some(language) => super::i18n::Catalog::for_language(language),
        None => super::i18n::Catalog::english(),
    };
    super::i18n::set_current(state.catalog.clone());
}

fn to_color_image(img: &RgbImage) -> egui::ColorImage {
    egui::ColorImage::from_rgb([img.width as usize, img.height as usize], &img.data)
}

/// Opens the file manager at a file (selected where the platform allows: the freedesktop
/// file-manager D-Bus interface, `open -R`, `explorer /select`; else its folder is opened).
pub fn reveal_in_folder(path: &Path) -> std::io::Result<()> {
    opener::reveal(path).map_err(|e| match e {
        opener::OpenError::Io(e) => e,
        other => std::io::Error::other(other),
    })
}

/// What a checkpoint without its own VAE or text encoder was loaded with, for the status line
/// ("VAE: sd1-tiny's (this file has none)"); `None` when it has both or a VAE was chosen.
fn borrowed_parts_note(state: &AppState, model: &Path) -> Option<String> {
    let chosen_vae = state.settings.choice_for(model).vae;
    let vae = chosen_vae
        .is_none()
        .then(|| state.models.vae_donor(model))
        .flatten()
        .map(|d| format!("VAE: {}", t!("vae-family", model = d.name.as_str())));
    let text = state
        .models
        .text_encoder_donor(model)
        .map(|d| t!("text-encoder-family", model = d.name.as_str()));
    let parts: Vec<String> = vae.into_iter().chain(text).collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}
