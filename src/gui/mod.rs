//! The desktop window (eframe, glow renderer). Panels draw from plain state; the worker thread
//! does all model work.

pub mod app;
pub mod fonts;
pub mod history_service;
pub mod history_state;
pub mod i18n;
pub mod loras_state;
pub mod mask_painter;
pub mod models_state;
pub mod panels;
pub mod prompt_weight;
pub mod settings;
pub mod start_state;
pub mod state;
pub mod tasks;
pub mod thumb_loader;
pub mod token_counter;

use std::path::PathBuf;

pub use app::{AppOptions, LanternApp};

/// The app icon (drawn by `tools/make_icon.py`), as the title bar and the X11 task bar show it.
/// Wayland docks take the icon from the desktop entry instead.
pub const ICON_PNG: &[u8] = include_bytes!("../../assets/icon/lantern-256.png");

/// [`ICON_PNG`] decoded for the window.
pub fn app_icon() -> egui::IconData {
    // The PNG is embedded and checked by a test, so this never fails in a build that passed them.
    eframe::icon_data::from_png_bytes(ICON_PNG).unwrap_or_default()
}

/// Opens the window; returns when it is closed.
pub fn run(model: Option<PathBuf>) -> anyhow::Result<()> {
    let data = crate::paths::DataDir::from_env();
    let data_dir = data.root().to_path_buf();
    std::fs::create_dir_all(&data_dir).map_err(|e| anyhow::anyhow!("{}: {e}", data_dir.display()))?;
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Glow,
        viewport: egui::ViewportBuilder::default()
            .with_title("Lantern")
            .with_inner_size([1280.0, 820.0])
            .with_min_inner_size([720.0, 480.0])
            .with_drag_and_drop(true)
            // Wayland's app id (X11's WM_CLASS is the binary's name, also `lantern`): the
            // compositor matches it to `lantern.desktop` for the dock's icon and name.
            .with_app_id("lantern")
            .with_icon(app_icon()),
        persist_window: true,
        persistence_path: Some(data.window_state()),
        ..Default::default()
    };
    eframe::run_native(
        "Lantern",
        options,
        Box::new(move |cc| {
            let fonts = fonts::install_fallbacks(&cc.egui_ctx);
            let mut app = LanternApp::new(&cc.egui_ctx, AppOptions { model, data_dir });
            app.state.cjk_font = Some(fonts.cjk.is_some());
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_icon_decodes() {
        let icon = app_icon();
        assert_eq!((icon.width, icon.height), (256, 256));
        assert_eq!(icon.rgba.len(), 256 * 256 * 4);
        // Rounded corners are transparent, the middle is opaque.
        assert_eq!(icon.rgba[3], 0);
        let mid = (128 * 256 + 128) * 4;
        assert_eq!(icon.rgba[mid + 3], 255);
    }

    #[test]
    fn every_icon_size_is_the_size_its_name_says() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/icon");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let Some(n) = name.strip_prefix("lantern-") else {
                continue;
            };
            let n: u32 = n.parse().unwrap();
            let icon = eframe::icon_data::from_png_bytes(&std::fs::read(&path).unwrap()).unwrap();
            assert_eq!((icon.width, icon.height), (n, n), "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 5, "icons in {}: {seen}", dir.display());
    }
}
