//! The app's side of the history view and of dropped PNGs: it owns the query thread and the
//! thumbnail loader, turns [`HistoryAction`]s into requests, and folds the answers back into
//! [`HistoryView`](crate::gui::history_state::HistoryView). Everything slow (SQLite, PNG
//! decoding, reading a dropped file, scanning for model folders) happens on other threads.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::{LanternApp, panels, reveal_in_folder};
use crate::gui::history_service::{HistoryReply, HistoryRequest, HistoryService};
use crate::gui::history_state::{DeleteConfirm, DetailImage, HistoryAction, SEARCH_DEBOUNCE};
use crate::gui::state::{Action, ModelStatus};
use crate::gui::tasks::Tasks;
use crate::gui::thumb_loader::ThumbLoader;
use crate::history::Query;
use crate::paths::DataDir;
use crate::recipe::Recipe;
use crate::t;

/// Most thumbnail requests waiting at once (a few screens' worth).
const THUMB_QUEUE: usize = 256;

/// Answers from the one-off helper threads of this module.
pub(super) enum HistoryMsg {
    /// The opened entry's full image, decoded.
    Detail {
        id: i64,
        /// `Err(None)`: the file is gone; `Err(Some(why))`: it could not be decoded.
        image: Result<egui::ColorImage, Option<String>>,
    },
    /// The opened entry's start picture with its mask, from the data folder's `inputs/`.
    DetailStart {
        id: i64,
        image: Result<egui::ColorImage, String>,
    },
    /// A PNG dropped on the window, read: its settings, or why there are none.
    Dropped {
        name: String,
        result: Box<Result<Recipe, DropProblem>>,
        /// The file's bytes, to start from it when it carries no settings.
        bytes: Option<Arc<[u8]>>,
    },
}

/// The threads and bookkeeping behind the history view.
pub(super) struct HistoryRuntime {
    service: HistoryService,
    thumbs: ThumbLoader,
    tasks: Tasks<HistoryMsg>,
    /// The query of the newest `Reset`; pages are fetched with it.
    query: Query,
    /// Pages already asked for, by (generation, page), so each is fetched once.
    requested_pages: HashSet<(u64, usize)>,
    /// Entries were added or removed: query again with the same filters when next shown.
    stale: bool,
}

impl HistoryRuntime {
    pub(super) fn start(ctx: &egui::Context, data: &DataDir, outputs: PathBuf) -> HistoryRuntime {
        let wake = ctx.clone();
        let service = HistoryService::spawn(data.history_db(), outputs, move || wake.request_repaint());
        let wake = ctx.clone();
        let threads = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4));
        let thumbs = ThumbLoader::spawn(data.thumbnails(), threads, THUMB_QUEUE, move || wake.request_repaint());
        HistoryRuntime {
            service,
            thumbs,
            tasks: Tasks::new(ctx),
            query: Query::all(),
            requested_pages: HashSet::new(),
            stale: false,
        }
    }
}

/// Which model folder an entry's model name points to.
enum ModelMatch {
    /// The chosen model, or no model recorded.
    Current,
    Other(PathBuf),
    Unknown(String),
}

impl LanternApp {
    /// Draws the "Create | History" bar and, when History is chosen, the whole history view.
    /// Returns whether it drew the history (the create panels are then left out).
    pub(super) fn history_panels(&mut self, ui: &mut egui::Ui, actions: &mut Vec<Action>) -> bool {
        egui::Panel::top("view_tabs").show(ui, |ui| panels::history::tabs(ui, &self.state, actions));
        panels::history::drop_hint(ui.ctx());
        if !self.state.settings.show_history {
            return false;
        }
        self.state.history.thumbs.begin_frame();
        if self.state.history.selected.is_some() {
            egui::Panel::right("history_detail")
                .resizable(true)
                .default_size(400.0)
                .show(ui, |ui| panels::history::details(ui, &mut self.state, actions));
        }
        egui::CentralPanel::default().show(ui, |ui| {
            panels::history::toolbar(ui, &mut self.state);
            ui.separator();
            panels::history::grid(ui, &mut self.state, actions);
        });
        panels::history::delete_dialog(ui, &mut self.state, actions);
        true
    }

    /// Takes in whatever the history threads have finished since the last frame.
    pub(super) fn poll_history(&mut self) {
        while let Some(reply) = self.history.service.try_recv() {
            self.on_history_reply(reply);
        }
        while let Some(done) = self.history.thumbs.try_recv() {
            let thumbs = &mut self.state.history.thumbs;
            match done.image {
                // Uploaded only if still on screen; otherwise the disk cache has it for later.
                Ok(image) if thumbs.visible.contains(&done.id) => {
                    let texture =
                        self.ctx
                            .load_texture(format!("thumb-{}", done.id), image, egui::TextureOptions::LINEAR);
                    thumbs.insert(done.id, texture);
                }
                Ok(_) => {}
                Err(reason) => thumbs.set_failed(done.id, reason),
            }
        }
        while let Some(msg) = self.history.tasks.try_recv() {
            self.on_history_msg(msg);
        }
    }

    /// Sends the queries the frame just drawn needs: new filters (once the search box is
    /// still), a refresh after new entries, missing pages, missing thumbnails.
    pub(super) fn sync_history(&mut self) {
        if !self.state.settings.show_history || self.state.history.error.is_some() {
            return;
        }
        let rt = &mut self.history;
        let h = &mut self.state.history;
        let changed = h.requested.as_ref() != Some(&h.filters);
        if changed && !h.search_settled(Instant::now()) {
            self.ctx.request_repaint_after(SEARCH_DEBOUNCE);
        } else if changed || rt.stale {
            h.requested_generation += 1;
            let pages = if changed || h.visible_pages.is_empty() {
                vec![0]
            } else {
                h.visible_pages.iter().copied().collect()
            };
            h.scroll_to_top |= changed;
            rt.query = h.filters.to_query(&jiff::ZonedDateTime::now());
            rt.requested_pages.clear();
            rt.service.send(HistoryRequest::Reset {
                generation: h.requested_generation,
                query: rt.query.clone(),
                pages,
            });
            if rt.stale || h.requested.is_none() {
                rt.service.send(HistoryRequest::Models);
            }
            h.requested = Some(h.filters.clone());
            rt.stale = false;
        }
        if h.requested_generation == h.generation {
            for &page in &h.visible_pages {
                if !h.pages.contains_key(&page) && rt.requested_pages.insert((h.generation, page)) {
                    rt.service.send(HistoryRequest::Page {
                        generation: h.generation,
                        query: rt.query.clone(),
                        page,
                    });
                }
            }
        }
        rt.thumbs.request(&h.thumbs.wanted);
    }

    /// A new image was recorded: it belongs at the top of the grid.
    pub(super) fn history_recorded(&mut self) {
        self.history.stale = true;
    }

    /// Reads the first file dropped on the window (on another thread) to restore its settings.
    pub(super) fn take_dropped_files(&mut self, ui: &egui::Ui) {
        let dropped = ui.input(|i| i.raw.dropped_files.clone());
        let Some(file) = dropped.first().cloned() else {
            return;
        };
        if dropped.len() > 1 {
            tracing::info!("{} files dropped; reading the first", dropped.len());
        }
        let path = file.path().to_path_buf();
        let name = path
            .file_name()
            .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let failed = name.clone();
        let read = move || {
            let bytes = file.bytes().map(Arc::<[u8]>::from);
            let result = bytes
                .clone()
                .map_err(DropProblem::Unreadable)
                .and_then(|bytes| params_from_png(&bytes));
            HistoryMsg::Dropped {
                name,
                result: Box::new(result),
                bytes: bytes.ok(),
            }
        };
        self.history
            .tasks
            .spawn("dropped-file", read, move |why| HistoryMsg::Dropped {
                name: failed,
                result: Box::new(Err(DropProblem::Unreadable(why))),
                bytes: None,
            });
    }

    pub(super) fn handle_history_action(&mut self, action: HistoryAction) {
        match action {
            HistoryAction::ShowHistory(show) => {
                self.state.settings.show_history = show;
                self.save_settings();
            }
            HistoryAction::Open(entry) => self.open_entry(*entry),
            HistoryAction::CloseDetail => {
                self.state.history.selected = None;
                self.state.history.detail = DetailImage::None;
                self.state.history.detail_start = DetailImage::None;
            }
            HistoryAction::UseSettings(entry) => {
                self.restore_params(&entry.params, &t!("restore-source-history"));
                self.state.settings.show_history = false;
                self.save_settings();
            }
            HistoryAction::Rerun(entry) => {
                if self.restore_params(&entry.params, &t!("restore-source-history")) {
                    self.enqueue();
                }
            }
            HistoryAction::SetFavourite { id, favourite } => {
                self.history
                    .service
                    .send(HistoryRequest::SetFavourite { id, favourite });
            }
            HistoryAction::CopyPrompt(prompt) => {
                self.ctx.copy_text(prompt);
                self.state.info(t!("prompt-copied"));
            }
            HistoryAction::ShowInFolder(path) => {
                if let Err(e) = reveal_in_folder(&path) {
                    self.state.warn(t!(
                        "file-manager-failed",
                        reason = e.to_string(),
                        path = path.display().to_string()
                    ));
                }
            }
            HistoryAction::AskDelete(entry) => {
                self.state.history.confirm_delete = Some(DeleteConfirm {
                    entry: *entry,
                    also_file: false,
                });
            }
            HistoryAction::Delete { id, delete_file } => {
                self.history.service.send(HistoryRequest::Delete { id, delete_file });
            }
        }
    }

    fn open_entry(&mut self, entry: crate::history::Entry) {
        let (id, path) = (entry.id, entry.image_path.clone());
        self.state.history.selected = Some(entry);
        self.state.history.detail = DetailImage::Loading;
        let decode = move || {
            let image = if path.is_file() {
                crate::output::decode_png_file(&path)
                    .map(|img| egui::ColorImage::from_rgb([img.width as usize, img.height as usize], &img.data))
                    .map_err(|e| Some(e.to_string()))
            } else {
                Err(None)
            };
            HistoryMsg::Detail { id, image }
        };
        self.history
            .tasks
            .spawn("history-image", decode, move |why| HistoryMsg::Detail {
                id,
                image: Err(Some(why)),
            });
        self.open_entry_start(id);
    }

    /// The start picture and mask of the opened entry, if it had them.
    fn open_entry_start(&mut self, id: i64) {
        let h = &mut self.state.history;
        let Some(params) = h.selected.as_ref().map(|e| e.params.clone()) else {
            return;
        };
        let Some(hash) = params.init_image.clone() else {
            h.detail_start = DetailImage::None;
            return;
        };
        h.detail_start = DetailImage::Loading;
        let store = crate::source::InputStore::new(self.data.inputs());
        let read = move || {
            let image = store.get(&hash).and_then(|picture| {
                let mask = params.mask.as_deref().map(|m| store.get_mask(m)).transpose()?;
                Ok(crate::gui::start_state::preview(&picture, mask.as_ref()))
            });
            HistoryMsg::DetailStart {
                id,
                image: image.map_err(|e| e.to_string()),
            }
        };
        self.history
            .tasks
            .spawn("history-start", read, move |why| HistoryMsg::DetailStart {
                id,
                image: Err(why),
            });
    }

    fn on_history_msg(&mut self, msg: HistoryMsg) {
        match msg {
            HistoryMsg::Detail { id, image } => {
                let h = &mut self.state.history;
                if h.selected.as_ref().is_none_or(|e| e.id != id) {
                    return; // another entry was opened meanwhile
                }
                h.detail = match image {
                    Ok(image) => DetailImage::Ready(self.ctx.load_texture(
                        format!("history-{id}"),
                        image,
                        egui::TextureOptions::LINEAR,
                    )),
                    Err(why) => DetailImage::Unavailable(why.unwrap_or_else(|| t!("file-moved-or-deleted"))),
                };
            }
            HistoryMsg::DetailStart { id, image } => {
                let h = &mut self.state.history;
                if h.selected.as_ref().is_none_or(|e| e.id != id) {
                    return;
                }
                h.detail_start = match image {
                    Ok(image) => DetailImage::Ready(self.ctx.load_texture(
                        format!("history-start-{id}"),
                        image,
                        egui::TextureOptions::LINEAR,
                    )),
                    Err(why) => DetailImage::Unavailable(why),
                };
            }
            HistoryMsg::Dropped { name, result, bytes } => match (*result, bytes) {
                (Ok(params), _) => {
                    self.restore_params(&params, &name);
                    self.state.settings.show_history = false;
                    self.save_settings();
                }
                // A picture without generation settings is one to start from.
                (Err(DropProblem::NotPng | DropProblem::NoSettings), Some(bytes)) => {
                    self.state.settings.show_history = false;
                    self.start_from_dropped(name, bytes);
                }
                (Err(why), _) => self.state.warn(why.message(&name)),
            },
        }
    }

    fn on_history_reply(&mut self, reply: HistoryReply) {
        let h = &mut self.state.history;
        match reply {
            HistoryReply::Opened { notice } => {
                if let Some(notice) = notice {
                    self.state.warn(t!("history-notice", notice = notice));
                }
            }
            HistoryReply::OpenFailed(why) => {
                h.error = Some(why.clone());
                self.state.error(t!("history-open-failed", reason = why));
            }
            HistoryReply::Reset {
                generation,
                total,
                pages,
                took,
            } => {
                if generation == h.requested_generation {
                    h.replace_results(generation, total, pages);
                    h.last_query_time = Some(took);
                }
            }
            HistoryReply::Page {
                generation,
                page,
                entries,
            } => h.add_page(generation, page, entries),
            HistoryReply::Models(models) => h.models = models,
            HistoryReply::FavouriteSet { id, favourite, result } => match result {
                Ok(()) => {
                    h.patch_favourite(id, favourite);
                    self.history.stale |= h.filters.favourites_only;
                }
                Err(e) => self.state.error(t!("favourite-failed", reason = e.to_string())),
            },
            HistoryReply::Deleted {
                id,
                delete_file,
                result,
            } => {
                self.history.stale = true;
                h.thumbs.remove(id);
                if h.selected.as_ref().is_some_and(|e| e.id == id) {
                    h.selected = None;
                    h.detail = DetailImage::None;
                    h.detail_start = DetailImage::None;
                }
                match result {
                    Ok(Some(_)) if delete_file => self.state.info(t!("deleted-entry-and-file")),
                    Ok(Some(_)) => self.state.info(t!("deleted-entry")),
                    Ok(None) => self.state.info(t!("entry-already-gone")),
                    Err(e) => self.state.error(t!("not-deleted", reason = e.to_string())),
                }
            }
            HistoryReply::Error(e) => self.state.error(t!("history-error", reason = e.to_string())),
        }
    }

    /// Restores a picture's settings (every parameter, its seed, a batch of one) and its model
    /// when a known folder has that name. Returns whether generating now would use the model
    /// the picture was made with (or one was never recorded).
    fn restore_params(&mut self, params: &Recipe, source: &str) -> bool {
        self.use_settings(params);
        self.state.settings.params.batch_size = 1;
        let restored = t!(
            "settings-restored-from",
            source = source,
            seed = params.seed.to_string()
        );
        let ok = match self.model_match(params) {
            ModelMatch::Current => {
                self.state.info(restored);
                true
            }
            ModelMatch::Other(path) => {
                let name = crate::model::display_name(&path);
                self.choose_model(path);
                self.state
                    .info(t!("restored-switched-model", restored = restored, name = name));
                true
            }
            ModelMatch::Unknown(name) => {
                self.state
                    .warn(t!("restored-unknown-model", restored = restored, name = name));
                false
            }
        };
        self.note_missing_loras(params);
        self.save_settings();
        ok
    }

    /// The model a restored picture was made with: by its `Model hash` first (A1111's way;
    /// names differ between setups), then by name. The chosen model wins a tie.
    fn model_match(&self, recipe: &Recipe) -> ModelMatch {
        let name = recipe.model.trim();
        let hash = recipe.model_hash.as_deref().map(str::trim).filter(|h| !h.is_empty());
        let same_hash = |h: Option<&str>| hash.zip(h).is_some_and(|(a, b)| a.eq_ignore_ascii_case(b));
        let current = self.state.settings.model.as_ref();
        if let ModelStatus::Ready(info) = &self.state.model
            && Some(&info.path) == current
            && same_hash(Some(&info.hash))
        {
            return ModelMatch::Current;
        }
        let hashes = &self.state.models.hashes;
        if let Some((path, _)) = hashes.iter().find(|(_, h)| same_hash(Some(h.as_str()))) {
            return match current == Some(path) {
                true => ModelMatch::Current,
                false => ModelMatch::Other(path.clone()),
            };
        }
        let same = |p: &PathBuf| crate::model::display_name(p).eq_ignore_ascii_case(name);
        if name.is_empty() || current.is_some_and(same) {
            return ModelMatch::Current;
        }
        let known = self
            .state
            .settings
            .user_models
            .iter()
            .chain(self.state.models.local.iter().map(|m| &m.path));
        match known.into_iter().find(|p| same(p)) {
            Some(path) => ModelMatch::Other(path.clone()),
            None => ModelMatch::Unknown(name.to_string()),
        }
    }
}

/// Why a dropped file gave no settings (worded on the UI thread, in the window's language).
#[derive(Clone, Debug, PartialEq)]
pub enum DropProblem {
    NotPng,
    NoSettings,
    Unreadable(String),
    Unparseable(String),
}

impl DropProblem {
    /// "<file name> is not a PNG image; …" and the like.
    pub fn message(&self, name: &str) -> String {
        match self {
            DropProblem::NotPng => t!("drop-not-png", name = name),
            DropProblem::NoSettings => t!("drop-no-settings", name = name),
            DropProblem::Unreadable(why) => t!("drop-unreadable", name = name, reason = why.as_str()),
            DropProblem::Unparseable(why) => t!("drop-unparseable", name = name, reason = why.as_str()),
        }
    }
}

/// The settings a PNG carries, or why there are none.
pub fn params_from_png(bytes: &[u8]) -> Result<Recipe, DropProblem> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !bytes.starts_with(SIGNATURE) {
        return Err(DropProblem::NotPng);
    }
    let text = match crate::output::read_parameters(bytes) {
        Ok(Some(text)) => text,
        Ok(None) => return Err(DropProblem::NoSettings),
        Err(e) => return Err(DropProblem::Unreadable(e.to_string())),
    };
    crate::output::parse_parameters(&text)
        .map(|p| p.to_recipe())
        .map_err(|e| DropProblem::Unparseable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gui_test_harness as harness;
    use crate::history::{History, NewEntry};
    use crate::output::{RgbImage, save_png};
    use crate::worker::WorkerEvent;

    fn wait(h: &mut egui_kittest::Harness<'_, LanternApp>, what: &str, cond: impl Fn(&LanternApp) -> bool) {
        harness::step_until(h, std::time::Duration::from_secs(60), what, cond);
    }

    /// The worker records each saved picture, then sends `Recorded`: the grid shows it on top.
    #[test]
    fn a_recorded_image_appears_at_the_top_of_the_grid() {
        let data = tempfile::tempdir().unwrap();
        let outputs = data.path().join("outputs");
        let img = RgbImage::from_raw(8, 8, vec![90; 192]).unwrap();
        let params = |prompt: &str| Recipe {
            prompt: prompt.into(),
            ..Default::default()
        };
        let db = History::open(&data.path().join("history.sqlite3")).unwrap();
        let first = save_png(&outputs, &img, &params("first"), None).unwrap();
        db.insert(&NewEntry::new(params("first"), &first)).unwrap();

        // Opened on History. No missing glyph is allowed: the view must not rely on emoji that
        // egui's default fonts lack (its own accessibility check runs at build too).
        std::fs::write(data.path().join("settings.json"), r#"{"show_history": true}"#).unwrap();
        let mut h = harness::window(data.path()).build();
        wait(&mut h, "the first entry", |a| a.state.history.entry_at(0).is_some());
        assert_eq!(a_total(&h), Some(1));
        // Open it too, so the detail panel is laid out (and checked) as well.
        use egui_kittest::kittest::Queryable;
        h.get_by_label("first · seed 0").click();
        wait(&mut h, "the detail image", |a| {
            matches!(a.state.history.detail, DetailImage::Ready(_))
        });
        h.step();
        h.check_accessibility();

        let second = save_png(&outputs, &img, &params("second"), None).unwrap();
        let id = crate::history::record_in(&db, &params("second"), &second, std::time::Duration::from_secs(1)).unwrap();
        h.state_mut().handle_worker_event(WorkerEvent::Recorded {
            path: second,
            entry_id: id,
        });
        wait(&mut h, "the new entry on top", |a| {
            a.state.history.entry_at(0).is_some_and(|e| e.id == id)
        });
        assert_eq!(a_total(&h), Some(2));
        assert_eq!(h.state().state.history.entry_at(1).unwrap().params.prompt, "first");
    }

    fn a_total(h: &egui_kittest::Harness<'_, LanternApp>) -> Option<u64> {
        h.state().state.history.total
    }

    #[test]
    fn png_without_settings_and_non_png_get_plain_reasons() {
        let img = crate::output::RgbImage::from_raw(2, 2, vec![0; 12]).unwrap();
        let bare = crate::output::png::encode_png(&img, None).unwrap();
        let no_settings = params_from_png(&bare).unwrap_err();
        assert_eq!(no_settings, DropProblem::NoSettings);
        assert!(
            no_settings
                .message("a.png")
                .starts_with("a.png has no generation settings")
        );
        let not_png = params_from_png(b"GIF89a....").unwrap_err();
        assert!(not_png.message("a.gif").starts_with("a.gif is not a PNG"));
        let params = Recipe {
            prompt: "a fox".into(),
            seed: 42,
            ..Default::default()
        };
        let text = crate::output::format_parameters(&params);
        let png = crate::output::png::encode_png(&img, Some(&text)).unwrap();
        let back = params_from_png(&png).unwrap();
        assert_eq!((back.prompt.as_str(), back.seed), ("a fox", 42));
    }
}
