//! The first screen when no model is chosen: what Lantern needs and how to get it.

use egui::{RichText, Ui};

use crate::gui::state::{Action, AppState, ModelStatus};

pub fn show(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    ui.vertical_centered(|ui| {
        ui.add_space(40.0);
        ui.heading(RichText::new("Welcome to Lantern").size(28.0));
        ui.add_space(8.0);
        ui.label("Lantern needs a Stable Diffusion model before it can draw. None is chosen yet.");
        if let ModelStatus::Failed { path, message } = &state.model {
            ui.add_space(8.0);
            ui.label(RichText::new(format!("Could not load {}:", path.display())).color(ui.visuals().error_fg_color));
            ui.label(RichText::new(message).color(ui.visuals().error_fg_color));
        }
        ui.add_space(16.0);
    });
    ui.group(|ui| {
        ui.label(RichText::new("Use a model folder you already have").strong());
        ui.label("A folder in the diffusers layout (it holds model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/).");
        ui.horizontal(|ui| {
            if ui.button("📂 Open a model folder…").clicked() {
                actions.push(Action::OpenModelDialog);
            }
            ui.label("or paste its path:");
            let response = ui.add(egui::TextEdit::singleline(&mut state.model_path_input).hint_text("/path/to/model").desired_width(320.0));
            let enter = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button("Use").clicked() || enter) && !state.model_path_input.trim().is_empty() {
                actions.push(Action::ChooseModel(state.model_path_input.trim().into()));
            }
        });
    });
}
