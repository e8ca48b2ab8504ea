//! The app's side of the LoRA browser: its preview thumbnails (made and decoded on a loader
//! thread, cached on disk like the history's), opening the LoRA folder, and naming the LoRAs
//! a restored picture asks for that are not on disk.

use super::LanternApp;
use crate::gui::loras_state::missing_loras;
use crate::gui::models_state::ScanState;
use crate::gui::thumb_loader::ThumbLoader;
use crate::paths::DataDir;
use crate::recipe::Recipe;
use crate::t;

/// Most preview requests waiting at once (the browser shows a few dozen rows).
const PREVIEW_QUEUE: usize = 64;

/// One loader thread: previews are small and cached on disk after the first time.
pub(super) fn preview_loader(ctx: &egui::Context, data: &DataDir) -> ThumbLoader {
    let wake = ctx.clone();
    ThumbLoader::spawn(data.thumbnails(), 1, PREVIEW_QUEUE, move || wake.request_repaint())
}

impl LanternApp {
    /// Before the browser is drawn: previews made since the last frame are uploaded (if still
    /// on screen), and a new scan's list starts with fresh previews.
    pub(super) fn poll_lora_previews(&mut self) {
        let browser = &mut self.state.loras;
        if browser.seen_scan != self.state.models.scans_done {
            browser.seen_scan = self.state.models.scans_done;
            browser.forget_previews();
        }
        while let Some(done) = self.lora_previews.try_recv() {
            let thumbs = &mut self.state.loras.thumbs;
            match done.image {
                Ok(image) if thumbs.visible.contains(&done.id) => {
                    let texture =
                        self.ctx
                            .load_texture(format!("lora-preview-{}", done.id), image, egui::TextureOptions::LINEAR);
                    thumbs.insert(done.id, texture);
                }
                Ok(_) => {}
                Err(reason) => thumbs.set_failed(done.id, reason),
            }
        }
        self.state.loras.thumbs.begin_frame();
    }

    /// After the browser is drawn: asks for the previews it showed without a picture.
    pub(super) fn sync_lora_previews(&mut self) {
        self.lora_previews.request(&self.state.loras.thumbs.wanted);
    }

    /// Opens the data folder's `loras/` (made first, so there is somewhere to put files).
    pub(super) fn open_lora_folder(&mut self) {
        let folder = self.data.loras();
        let opened = std::fs::create_dir_all(&folder).and_then(|()| {
            opener::open(&folder).map_err(|e| match e {
                opener::OpenError::Io(e) => e,
                other => std::io::Error::other(other),
            })
        });
        if let Err(e) = opened {
            self.state.warn(t!(
                "file-manager-failed",
                reason = e.to_string(),
                path = folder.display().to_string()
            ));
        }
    }

    /// After a picture's settings were restored: its prompt's LoRAs that are not on disk are
    /// named in the notice, with where to put them. The restore itself stands.
    pub(super) fn note_missing_loras(&mut self, recipe: &Recipe) {
        if self.state.models.scan != ScanState::Done {
            return; // not known yet; generating would say which one is missing
        }
        let missing = missing_loras(&recipe.prompt, &self.state.models.loras);
        if missing.is_empty() {
            return;
        }
        let text = t!(
            "loras-missing",
            names = missing.join(", "),
            folder = self.data.loras().display().to_string()
        );
        let text = match self.state.status.take() {
            Some(restored) => format!("{} {text}", restored.text),
            None => text,
        };
        self.state.warn(text);
    }
}
