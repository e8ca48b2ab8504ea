//! The desktop window (eframe, glow renderer). Panels draw from plain state; the worker thread
//! does all model work.

pub mod app;
pub mod fonts;
pub mod history_service;
pub mod history_state;
pub mod models_state;
pub mod panels;
pub mod settings;
pub mod state;
pub mod tasks;
pub mod thumb_loader;

use std::path::PathBuf;

pub use app::{AppOptions, LanternApp};

/// Opens the window; returns when it is closed.
pub fn run(model: Option<PathBuf>) -> anyhow::Result<()> {
    let data = crate::paths::data_dir();
    std::fs::create_dir_all(&data).map_err(|e| anyhow::anyhow!("{}: {e}", data.display()))?;
    let data_dir = data.clone();
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Glow,
        viewport: egui::ViewportBuilder::default()
            .with_title("Lantern")
            .with_inner_size([1280.0, 820.0])
            .with_min_inner_size([720.0, 480.0])
            .with_drag_and_drop(true),
        persist_window: true,
        persistence_path: Some(data.join("window.ron")),
        ..Default::default()
    };
    eframe::run_native(
        "Lantern",
        options,
        Box::new(move |cc| {
            fonts::install_fallbacks(&cc.egui_ctx);
            Ok(Box::new(LanternApp::new(&cc.egui_ctx, AppOptions { model, data_dir })))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))
}
