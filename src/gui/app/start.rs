//! The start picture: opening a picture or a mask (file dialog or drop), starting from a shown
//! or recorded picture, inverting the mask, and fetching a restored job's pictures from the
//! data folder's `inputs/`. Reading, decoding, keeping and previewing run off the UI thread;
//! the window swaps the result in when it arrives.

use std::sync::Arc;

use super::LanternApp;
use crate::gui::mask_painter::MaskPainter;
use crate::gui::start_state::{StartAction, StartPicture, inverted, preview};
use crate::output::RgbImage;
use crate::source::{GrayImage, InputStore, SourceImages};
use crate::t;

/// A finished piece of background work.
pub(super) enum StartMsg {
    Loaded(Box<Result<Loaded, String>>),
    /// The dialog was closed without a choice.
    NothingChosen,
}

pub(super) struct Loaded {
    images: SourceImages,
    image_hash: String,
    mask_hash: Option<String>,
    preview: egui::ColorImage,
    /// A new picture: the size takes its shape.
    new_picture: bool,
    /// What to say once it is in.
    note: String,
}

/// Extensions the file dialog offers (what `source::decode` reads).
const PICTURE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "PNG"];

impl LanternApp {
    pub(super) fn handle_start_action(&mut self, action: StartAction) {
        match action {
            StartAction::OpenPicture => self.pick_start_file(false),
            StartAction::OpenMask => self.pick_start_file(true),
            StartAction::UseImage(image) => {
                self.load_start(move |store| keep(store, (*image).clone(), None, true, t!("start-from-result")));
            }
            StartAction::UseFile(path) => self.load_start(move |store| {
                let image = crate::source::read_init_image(&path).map_err(|e| e.to_string())?;
                keep(store, image, None, true, t!("start-loaded", name = file_name(&path)))
            }),
            StartAction::InvertMask => {
                let Some(current) = self.current_start() else { return };
                self.load_start(move |store| {
                    let mask = current.mask.as_ref().map(inverted);
                    keep(store, current.image, mask, false, t!("start-mask-inverted"))
                });
            }
            StartAction::ClearMask => {
                if let Some(current) = self.current_start() {
                    self.load_start(move |store| keep(store, current.image, None, false, t!("start-mask-cleared")));
                }
            }
            StartAction::Paint => {
                if let Some(current) = self.current_start() {
                    let (w, h) = (current.image.width, current.image.height);
                    self.state.start.painter = Some(MaskPainter::new(w, h, current.mask));
                    self.state.start.painter_texture = None;
                }
            }
            StartAction::SetMask(mask) => {
                let Some(current) = self.current_start() else { return };
                self.load_start(move |store| {
                    // Nothing painted is no mask: the whole picture is redrawn.
                    let mask = Some(mask).filter(|m| m.data.iter().any(|&v| v > 0));
                    keep(store, current.image, mask, false, String::new())
                });
            }
            StartAction::PaintDone => {
                self.state.start.painter = None;
                self.state.start.painter_texture = None;
                let note = if self.state.start.has_mask() {
                    t!("mask-kept")
                } else {
                    t!("start-mask-cleared")
                };
                self.state.info(note);
            }
            StartAction::Extend(sides) => {
                let Some(current) = self.current_start() else { return };
                self.load_start(move |store| {
                    let extended = crate::source::outpaint::extend(&current, sides).map_err(|e| e.to_string())?;
                    let (w, h) = (extended.image.width, extended.image.height);
                    keep(
                        store,
                        extended.image,
                        extended.mask,
                        true,
                        t!("start-extended", width = w, height = h),
                    )
                });
            }
            StartAction::Clear => {
                self.state.start.painter = None;
                self.state.start.picture = None;
                self.state.settings.params.init_image = None;
                self.state.settings.params.mask = None;
                self.save_settings();
                self.state.info(t!("start-cleared"));
            }
        }
    }

    /// A file dropped on the window that carries no generation settings: start from it.
    pub(super) fn start_from_dropped(&mut self, name: String, bytes: Arc<[u8]>) {
        self.load_start(move |store| {
            let image = crate::source::decode_init_image(&bytes).map_err(|e| format!("{name}: {e}"))?;
            keep(store, image, None, true, t!("start-loaded", name = name.as_str()))
        });
    }

    /// Ctrl+V with a picture on the clipboard (a screenshot, an image copied in a browser or
    /// editor), or with the path of a picture file (a file copied in a file manager): it becomes
    /// the start picture. The event is taken so that no text box pastes the path.
    pub(super) fn take_pasted_pictures(&mut self, ui: &egui::Ui) {
        let mut pasted: Vec<StartAction> = Vec::new();
        ui.input_mut(|i| {
            i.events.retain(|e| match e {
                egui::Event::PasteImage(image) => {
                    let [w, h] = image.size;
                    let data = image.pixels.iter().flat_map(|c| {
                        let [r, g, b, _] = c.to_srgba_unmultiplied();
                        [r, g, b]
                    });
                    if let Ok(rgb) = RgbImage::from_raw(w as u32, h as u32, data.collect()) {
                        pasted.push(StartAction::UseImage(Arc::new(rgb)));
                    }
                    false
                }
                egui::Event::Paste(text) => match picture_path(text) {
                    Some(path) => {
                        pasted.push(StartAction::UseFile(path));
                        false
                    }
                    None => true,
                },
                _ => true,
            })
        });
        for action in pasted {
            self.handle_start_action(action);
        }
    }

    /// A restored recipe's start pictures, fetched from `inputs/` by their hashes; none
    /// clears the section.
    pub(super) fn restore_start(&mut self, image: Option<String>, mask: Option<String>) {
        let Some(image_hash) = image else {
            self.state.start.picture = None;
            return;
        };
        self.load_start(move |store| {
            let picture = store.get(&image_hash).map_err(|e| e.to_string())?;
            let mask = mask
                .map(|h| store.get_mask(&h))
                .transpose()
                .map_err(|e| e.to_string())?;
            keep(store, picture, mask, false, t!("start-restored"))
        });
    }

    pub(super) fn poll_start(&mut self) {
        while let Some(msg) = self.start_tasks.try_recv() {
            self.state.start.loading = false;
            match msg {
                StartMsg::NothingChosen => {}
                StartMsg::Loaded(result) => match *result {
                    Ok(loaded) => self.show_start(loaded),
                    Err(why) => {
                        // A recipe naming pictures that are gone is a txt2img recipe now.
                        if self.state.start.picture.is_none() {
                            self.state.settings.params.init_image = None;
                            self.state.settings.params.mask = None;
                        }
                        self.state.error(t!("start-failed", reason = why.as_str()));
                    }
                },
            }
        }
    }

    fn show_start(&mut self, loaded: Loaded) {
        let texture = self
            .ctx
            .load_texture("start-picture", loaded.preview, egui::TextureOptions::LINEAR);
        let params = &mut self.state.settings.params;
        params.init_image = Some(loaded.image_hash);
        params.mask = loaded.mask_hash;
        if loaded.new_picture {
            let area = f64::from(params.width) * f64::from(params.height);
            let (w, h) = fitted_size(loaded.images.image.width, loaded.images.image.height, area);
            params.width = w;
            params.height = h;
        }
        self.state.start.picture = Some(StartPicture {
            images: Arc::new(loaded.images),
            texture,
        });
        if !loaded.note.is_empty() {
            self.state.info(loaded.note);
        }
        self.save_settings();
    }

    fn current_start(&self) -> Option<SourceImages> {
        self.state.start.source()
    }

    fn pick_start_file(&mut self, mask: bool) {
        let current = self.current_start();
        if mask && current.is_none() {
            return;
        }
        self.load_start(move |store| {
            let title = if mask {
                t!("start-open-mask-title")
            } else {
                t!("start-open-title")
            };
            let Some(path) = rfd::FileDialog::new()
                .set_title(title)
                .add_filter(t!("start-file-filter"), &PICTURE_EXTENSIONS)
                .pick_file()
            else {
                return Err(String::new());
            };
            let name = file_name(&path);
            if mask {
                let current = current.expect("checked");
                let m = crate::source::read_mask(&path).map_err(|e| e.to_string())?;
                keep(
                    store,
                    current.image,
                    Some(m),
                    false,
                    t!("start-mask-loaded", name = name),
                )
            } else {
                let image = crate::source::read_init_image(&path).map_err(|e| e.to_string())?;
                keep(store, image, None, true, t!("start-loaded", name = name))
            }
        });
    }

    /// Runs `work` on its own thread with the data folder's picture store; an empty error
    /// means nothing was chosen.
    fn load_start<W>(&mut self, work: W)
    where
        W: FnOnce(&InputStore) -> Result<Loaded, String> + Send + 'static,
    {
        self.state.start.loading = true;
        let store = InputStore::new(self.data.inputs());
        let run = move || match work(&store) {
            Err(why) if why.is_empty() => StartMsg::NothingChosen,
            result => StartMsg::Loaded(Box::new(result)),
        };
        self.start_tasks
            .spawn("start-picture", run, |why| StartMsg::Loaded(Box::new(Err(why))));
    }
}

/// Keeps the pictures in `inputs/` and makes the preview.
fn keep(
    store: &InputStore,
    image: RgbImage,
    mask: Option<GrayImage>,
    new_picture: bool,
    note: String,
) -> Result<Loaded, String> {
    let image_hash = store.put(&image).map_err(|e| e.to_string())?;
    let mask_hash = mask
        .as_ref()
        .map(|m| store.put_mask(m))
        .transpose()
        .map_err(|e| e.to_string())?;
    let preview = preview(&image, mask.as_ref());
    Ok(Loaded {
        images: SourceImages { image, mask },
        image_hash,
        mask_hash,
        preview,
        new_picture,
        note,
    })
}

/// A pasted text that names one existing picture file (a path, or a `file://` URI as file
/// managers copy them).
fn picture_path(text: &str) -> Option<std::path::PathBuf> {
    let line = text.trim();
    if line.is_empty() || line.contains('\n') {
        return None;
    }
    let path = match url::Url::parse(line) {
        Ok(u) if u.scheme() == "file" => u.to_file_path().ok()?,
        _ => std::path::PathBuf::from(line),
    };
    let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
    let picture = PICTURE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(&ext));
    (picture && path.is_file()).then_some(path)
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The size for a new start picture: the picture's shape at about `area` pixels (the size set
/// before), sides multiples of 8 from 64 to 2048.
pub fn fitted_size(width: u32, height: u32, area: f64) -> (u32, u32) {
    let scale = (area / (f64::from(width) * f64::from(height))).sqrt();
    let side = |v: u32| ((((f64::from(v) * scale) / 8.0).round() as u32) * 8).clamp(64, 2048);
    (side(width), side(height))
}

#[cfg(test)]
mod tests {
    use super::fitted_size;

    #[test]
    fn a_new_picture_keeps_its_shape_at_the_area_set_before() {
        assert_eq!(fitted_size(1024, 768, 512.0 * 512.0), (592, 440));
        assert_eq!(fitted_size(64, 64, 512.0 * 512.0), (512, 512));
        assert_eq!(fitted_size(10000, 10, 512.0 * 512.0), (2048, 64));
    }

    #[test]
    fn pasted_text_is_a_picture_only_when_it_names_one() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("shot.PNG");
        std::fs::write(&png, b"x").unwrap();
        assert_eq!(
            super::picture_path(&format!("  {}\n", png.display())),
            Some(png.clone())
        );
        let uri = url::Url::from_file_path(&png).unwrap().to_string();
        assert_eq!(super::picture_path(&uri), Some(png.clone()));
        assert_eq!(super::picture_path("a red fox"), None);
        assert_eq!(
            super::picture_path(&dir.path().join("missing.png").display().to_string()),
            None
        );
        let txt = dir.path().join("notes.txt");
        std::fs::write(&txt, b"x").unwrap();
        assert_eq!(super::picture_path(&txt.display().to_string()), None);
        assert_eq!(
            super::picture_path(&format!("{}\n{}", png.display(), png.display())),
            None
        );
    }
}
