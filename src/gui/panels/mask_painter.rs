//! The mask painter: the start picture large in the central panel, the mask tinted red over
//! it; drag to paint where the picture is to be repainted. Brush size, paint or erase, undo
//! and redo (Ctrl+Z, Ctrl+Shift+Z), clear, invert. Each finished stroke is kept as the mask.

use egui::{Color32, Key, Modifiers, Pos2, Rect, RichText, Sense, Stroke, Ui, Vec2};

use crate::gui::start_state::{StartAction, preview};
use crate::gui::state::{Action, AppState};
use crate::t;

pub fn show(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    let Some(picture) = &state.start.picture else {
        state.start.painter = None;
        return;
    };
    let image = picture.images.image.clone();
    let Some(painter) = state.start.painter.as_mut() else {
        return;
    };
    let mut commit = false;
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(t!("mask-painter-heading")).strong());
        ui.separator();
        let l = ui.label(t!("brush-size"));
        ui.add(
            egui::Slider::new(&mut painter.radius, 1.0..=256.0)
                .logarithmic(true)
                .suffix(" px"),
        )
        .labelled_by(l.id);
        ui.selectable_value(&mut painter.erase, false, format!("✏ {}", t!("brush-paint")));
        ui.selectable_value(&mut painter.erase, true, format!("🔳 {}", t!("brush-erase")));
        ui.separator();
        let undo_keys = ui.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::Z));
        let redo_keys = ui.input_mut(|i| {
            i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z) || i.consume_key(Modifiers::COMMAND, Key::Y)
        });
        if ui
            .add_enabled(painter.can_undo(), egui::Button::new(format!("⟲ {}", t!("undo"))))
            .on_hover_text("Ctrl+Z")
            .clicked()
            || (undo_keys && painter.can_undo())
        {
            painter.undo();
            commit = true;
        }
        if ui
            .add_enabled(painter.can_redo(), egui::Button::new(format!("⟳ {}", t!("redo"))))
            .on_hover_text("Ctrl+Shift+Z")
            .clicked()
            || (redo_keys && painter.can_redo())
        {
            painter.redo();
            commit = true;
        }
        if ui.button(t!("mask-clear-all")).clicked() {
            painter.clear();
            commit = true;
        }
        if ui.button(t!("start-mask-invert")).clicked() {
            painter.invert();
            commit = true;
        }
        ui.separator();
        if ui.button(format!("✔ {}", t!("mask-done"))).clicked() {
            actions.push(Action::Start(StartAction::PaintDone));
        }
    });
    ui.label(RichText::new(t!("mask-painter-hint")).weak().small());

    if painter.dirty || state.start.painter_texture.is_none() {
        let shown = preview(&image, Some(&painter.mask));
        match &mut state.start.painter_texture {
            Some(tex) => tex.set(shown, egui::TextureOptions::LINEAR),
            None => {
                state.start.painter_texture = Some(ui.ctx().load_texture(
                    "mask-painter",
                    shown,
                    egui::TextureOptions::LINEAR,
                ));
            }
        }
        painter.dirty = false;
    }
    let Some(texture) = &state.start.painter_texture else {
        return;
    };
    let avail = ui.available_size();
    let scale = (avail.x / image.width as f32).min(avail.y / image.height as f32);
    let size = Vec2::new(image.width as f32, image.height as f32) * scale;
    let (response, canvas) = ui.allocate_painter(size, Sense::click_and_drag());
    let rect = response.rect;
    state.start.painter_rect = Some(rect);
    canvas.image(
        texture.id(),
        rect,
        Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
        Color32::WHITE,
    );
    let to_picture = |p: Pos2| ((p.x - rect.min.x) / scale, (p.y - rect.min.y) / scale);
    let pointer = response.interact_pointer_pos().or(response.hover_pos());
    let down = response.is_pointer_button_down_on();
    if let Some(pos) = response.interact_pointer_pos() {
        let at = to_picture(pos);
        if down && painter.stroking() {
            painter.stroke_to(at);
        } else if down || (response.clicked() && !painter.stroking()) {
            // A press starts a stroke; a click too quick to be seen down is a single dab.
            painter.begin_stroke(at);
        }
    }
    if painter.stroking() && !down {
        painter.end_stroke();
        commit = true;
    }
    if let Some(pos) = pointer {
        let color = if painter.erase {
            Color32::WHITE
        } else {
            Color32::from_rgb(230, 40, 60)
        };
        canvas.circle_stroke(pos, painter.radius * scale, Stroke::new(1.5, color));
    }
    if commit {
        actions.push(Action::Start(StartAction::SetMask(painter.mask.clone())));
    }
}
