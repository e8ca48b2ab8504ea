//! The About window: version, what this build can run on, and where Lantern keeps things
//! (the same facts as `lantern --version`, for bug reports and for finding one's pictures).

use egui::RichText;

use crate::build_info::BuildInfo;
use crate::gui::state::AppState;
use crate::paths::DataDir;
use crate::t;

pub fn window(ctx: &egui::Context, state: &mut AppState, data: &DataDir) {
    let info = BuildInfo {
        data_dir: data.root().to_path_buf(),
        ..BuildInfo::current()
    };
    let outputs = state.settings.output_dir(data);
    let mut open = true;
    egui::Window::new(t!("about-title"))
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            ui.heading(RichText::new(format!("Lantern {}", info.version)).strong());
            ui.label(t!("about-tagline"));
            ui.add_space(6.0);
            egui::Grid::new("about_grid")
                .num_columns(2)
                .spacing([10.0, 4.0])
                .show(ui, |ui| {
                    let mut row = |key: String, value: String| {
                        ui.label(RichText::new(key).weak());
                        ui.add(egui::Label::new(value).selectable(true));
                        ui.end_row();
                    };
                    row(t!("about-version"), info.version.to_string());
                    row(t!("about-platform"), info.target.clone());
                    row(t!("about-devices"), info.devices());
                    row(t!("about-data-folder"), info.data_dir.display().to_string());
                    row(t!("about-outputs"), outputs.display().to_string());
                    row(t!("about-language"), state.catalog.code().to_string());
                });
            ui.add_space(6.0);
            if ui.button(t!("about-copy")).clicked() {
                ui.ctx().copy_text(info.long_version());
            }
        });
    if !open {
        state.about_open = false;
    }
}
