//! The central image: fit to window or 100 %, wheel zoom and drag pan, a grid when a batch
//! made several pictures, a live preview while sampling, and the picture's actions.

use egui::{Rect, RichText, Sense, Ui, Vec2};

use crate::gui::state::{Action, AppState, Zoom};
use crate::t;

pub fn show(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    toolbar(ui, state, actions);
    ui.separator();
    if state.images.len() > 1 {
        thumbnails(ui, state);
    }
    let texture = match (&state.running, state.images.get(state.selected)) {
        // While sampling, the preview of the image forming replaces the last result.
        (Some(run), _) if run.preview.is_some() => run.preview.clone(),
        (_, Some(img)) => Some(img.texture.clone()),
        _ => None,
    };
    let Some(texture) = texture else {
        ui.centered_and_justified(|ui| {
            ui.label(RichText::new(t!("image-empty-hint")).weak().size(18.0));
        });
        return;
    };
    canvas(ui, state, &texture);
}

fn toolbar(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        if ui.selectable_label(state.zoom == Zoom::Fit, t!("zoom-fit")).clicked() {
            state.zoom = Zoom::Fit;
            state.pan = Vec2::ZERO;
        }
        if ui.selectable_label(state.zoom == Zoom::Scale(1.0), "100%").clicked() {
            state.zoom = Zoom::Scale(1.0);
            state.pan = Vec2::ZERO;
        }
        if let Zoom::Scale(s) = state.zoom {
            ui.label(format!("{:.0}%", s * 100.0));
        }
        ui.separator();
        let has_image = state.selected_image().is_some();
        let has_file = state.selected_image().is_some_and(|i| i.path.is_some());
        if ui
            .add_enabled(has_file, egui::Button::new(format!("💾 {}", t!("save-as"))))
            .clicked()
        {
            actions.push(Action::SaveAs);
        }
        if ui
            .add_enabled(has_image, egui::Button::new(format!("📋 {}", t!("copy-image"))))
            .clicked()
        {
            actions.push(Action::CopyImage);
        }
        if ui
            .add_enabled(has_file, egui::Button::new(format!("📁 {}", t!("show-in-folder"))))
            .clicked()
        {
            actions.push(Action::ShowInFolder);
        }
        if let Some(img) = state.selected_image()
            && ui
                .button(format!("🖼 {}", t!("use-as-start")))
                .on_hover_text(t!("use-as-start-tip"))
                .clicked()
        {
            actions.push(Action::Start(crate::gui::start_state::StartAction::UseImage(
                img.pixels.clone(),
            )));
        }
        if let Some(img) = state.selected_image() {
            ui.separator();
            let p = &img.params;
            ui.label(
                RichText::new(t!(
                    "image-summary",
                    width = p.width,
                    height = p.height,
                    seed = p.seed.to_string(),
                    steps = p.steps,
                    cfg = p.guidance
                ))
                .weak(),
            )
            .on_hover_text(crate::output::format_parameters(p));
        }
    });
}

fn thumbnails(ui: &mut Ui, state: &mut AppState) {
    egui::ScrollArea::horizontal().id_salt("batch_strip").show(ui, |ui| {
        ui.horizontal(|ui| {
            for (i, img) in state.images.iter().enumerate() {
                let size = img.texture.size_vec2();
                let scale = 72.0 / size.x.max(size.y);
                let button = egui::Button::image(egui::Image::new((img.texture.id(), size * scale)))
                    .selected(i == state.selected);
                if ui
                    .add(button)
                    .on_hover_text(t!("image-seed", seed = img.params.seed.to_string()))
                    .clicked()
                {
                    state.selected = i;
                }
            }
        });
    });
}

fn canvas(ui: &mut Ui, state: &mut AppState, texture: &egui::TextureHandle) {
    let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
    let image_size = match state.selected_image() {
        Some(img) if state.running.is_none() => egui::vec2(img.params.width as f32, img.params.height as f32),
        _ => {
            // A linear preview is an eighth of the final size, a TAESD one the size itself;
            // either is shown at the final size.
            let scale = state.running.as_ref().map_or(8.0, |r| r.preview_scale);
            texture.size_vec2() * scale
        }
    };
    let fit = (rect.width() / image_size.x).min(rect.height() / image_size.y).min(4.0);
    let scale = match state.zoom {
        Zoom::Fit => fit,
        Zoom::Scale(s) => s,
    };
    if response.hovered() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        if scroll != 0.0 {
            let new = (scale * (1.0 + scroll * 0.002)).clamp(0.05, 16.0);
            state.zoom = Zoom::Scale(new);
        }
    }
    if response.dragged() {
        state.pan += response.drag_delta();
    }
    if response.double_clicked() {
        state.zoom = Zoom::Fit;
        state.pan = Vec2::ZERO;
    }
    let shown = image_size * scale;
    let center = rect.center() + if state.zoom == Zoom::Fit { Vec2::ZERO } else { state.pan };
    let target = Rect::from_center_size(center, shown);
    let painter = ui.painter_at(rect);
    painter.image(
        texture.id(),
        target,
        Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
        egui::Color32::WHITE,
    );
}
