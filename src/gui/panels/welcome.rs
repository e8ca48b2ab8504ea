//! The first screen, shown while no model is usable: says so in plain words, then offers every
//! way to get one, fastest first: a model already on this computer, a download from the
//! catalog (the one suggested for this machine first), or a folder the user has.

use egui::{RichText, Ui};

use super::models::{catalog_card, local_model_row, looked_in};
use crate::gui::models_state::{ModelsState, ScanState, readable_load_error};
use crate::gui::state::{Action, AppState, ModelStatus};
use crate::t;

/// Widest the text column gets, so lines stay readable on a wide window.
const COLUMN: f32 = 760.0;

pub fn show(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
        let margin = ((ui.available_width() - COLUMN) / 2.0).max(0.0);
        ui.horizontal(|ui| {
            ui.add_space(margin);
            ui.vertical(|ui| {
                ui.set_max_width(COLUMN.min(ui.available_width()));
                intro(ui, state);
                found_on_disk(ui, state, actions);
                catalog(ui, &state.models, actions);
                own_folder(ui, state, actions);
            });
        });
    });
}

fn intro(ui: &mut Ui, state: &AppState) {
    ui.add_space(24.0);
    ui.heading(RichText::new(t!("welcome-title")).size(28.0));
    ui.add_space(6.0);
    if let ModelStatus::Failed { path, message, .. } = &state.model {
        load_error(ui, path, message);
    } else {
        ui.label(RichText::new(t!("welcome-intro")).size(15.0));
    }
    ui.add_space(12.0);
}

/// A failed load, with the file or field that is wrong on its own line.
fn load_error(ui: &mut Ui, path: &std::path::Path, message: &str) {
    let color = ui.visuals().error_fg_color;
    egui::Frame::group(ui.style())
        .stroke(egui::Stroke::new(1.0, color))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new(readable_load_error(path, message)).color(color).strong());
            ui.label(RichText::new(path.display().to_string()).monospace().small());
            ui.label(t!("welcome-load-failed-hint"));
        });
}

fn found_on_disk(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    let models = &state.models;
    ui.label(RichText::new(t!("welcome-on-disk")).strong().size(16.0));
    match models.scan {
        ScanState::NotYet | ScanState::Running => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(t!("welcome-scanning"));
            });
        }
        ScanState::Done if models.local.is_empty() => {
            ui.label(t!("welcome-none-found"));
            looked_in(ui, models);
        }
        ScanState::Done => {
            let usable = models.complete().count();
            ui.label(t!("welcome-found", count = models.local.len(), usable = usable));
            for m in &models.local {
                let chosen = state.settings.model.as_ref() == Some(&m.path);
                local_model_row(ui, m, chosen, models, actions);
            }
        }
    }
    ui.add_space(12.0);
}

fn catalog(ui: &mut Ui, models: &ModelsState, actions: &mut Vec<Action>) {
    ui.label(RichText::new(t!("welcome-download")).strong().size(16.0));
    ui.label(t!("welcome-download-note"));
    if let Some(problem) = &models.hub_problem {
        ui.label(
            RichText::new(t!("downloads-unavailable", problem = problem.as_str())).color(ui.visuals().warn_fg_color),
        );
    }
    for (i, entry) in models.catalog.iter().enumerate() {
        catalog_card(ui, entry, i == 0, models, actions);
    }
    if ui
        .button(t!("welcome-manage"))
        .on_hover_text(t!("welcome-manage-tip"))
        .clicked()
    {
        actions.push(Action::OpenModelManager);
    }
    ui.add_space(12.0);
}

fn own_folder(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    ui.label(RichText::new(t!("welcome-own-folder")).strong().size(16.0));
    ui.label(t!("welcome-own-folder-note"));
    ui.horizontal(|ui| {
        if ui.button(t!("open-model-folder")).clicked() {
            actions.push(Action::OpenModelDialog);
        }
        let label = ui.label(t!("welcome-paste-path"));
        let response = ui
            .add(
                egui::TextEdit::singleline(&mut state.model_path_input)
                    .hint_text(t!("welcome-path-hint"))
                    .desired_width(300.0),
            )
            .labelled_by(label.id);
        let enter = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button(t!("welcome-use-folder")).clicked() || enter) && !state.model_path_input.trim().is_empty() {
            actions.push(Action::ChooseModel(state.model_path_input.trim().into()));
        }
    });
    ui.add_space(24.0);
}
