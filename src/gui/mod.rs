//! The desktop window (eframe, glow renderer). Panels draw from plain state; the worker thread
//! does all model work.

pub mod app;
pub mod fonts;
pub mod history_service;
pub mod history_state;
pub mod i18n;
pub mod models_state;
pub mod panels;
pub mod prompt_weight;
pub mod settings;
pub mod state;
pub mod tasks;
pub mod thumb_loader;

use std::path::PathBuf;

pub use app::{AppOptions, LanternApp};

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
            .with_drag_and_drop(true),
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
