//! The start-picture section of the left panel: the picture img2img and inpainting start
//! from (its mask tinted over it), its buttons, and the settings that only matter with one —
//! denoising strength, resize mode, mask blur, keeping the unmasked pixels.

use egui::{RichText, Ui};

use crate::gui::start_state::{StartAction, preview_size};
use crate::gui::state::{Action, AppState};
use crate::recipe::{MAX_MASK_BLUR, ResizeMode};
use crate::t;

/// The preview's largest side on screen.
const PREVIEW_SIDE: f32 = 240.0;

pub fn show(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    let active = state.start.picture.is_some();
    let heading = if active {
        t!("start-heading-active")
    } else {
        t!("start-heading")
    };
    let mut header = egui::CollapsingHeader::new(heading).id_salt("start_picture");
    if active {
        // Starting from a picture is a mode: while one is loaded it is always in view.
        header = header.open(Some(true));
    }
    header.show(ui, |ui| {
        if state.start.loading {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(t!("start-loading"));
            });
        }
        match &state.start.picture {
            None => empty(ui, actions),
            Some(picture) => {
                let image = &picture.images.image;
                let side = PREVIEW_SIDE.min(ui.available_width());
                let size = preview_size(image.width, image.height, side);
                ui.add(egui::Image::new((picture.texture.id(), size)))
                    .on_hover_text(t!("start-preview-tip"));
                let caption = if picture.images.mask.is_some() {
                    t!("start-size-mask", width = image.width, height = image.height)
                } else {
                    t!("start-size", width = image.width, height = image.height)
                };
                ui.label(RichText::new(caption).weak().small());
                let has_mask = picture.images.mask.is_some();
                buttons(ui, has_mask, actions);
                outpaint(ui, &mut state.start.extend_px, actions);
                settings(ui, state, has_mask);
            }
        }
    });
}

fn empty(ui: &mut Ui, actions: &mut Vec<Action>) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.label(RichText::new(t!("start-drop-hint")).weak());
        if ui
            .button(format!("📂 {}", t!("start-open")))
            .on_hover_text(t!("start-open-tip"))
            .clicked()
        {
            actions.push(Action::Start(StartAction::OpenPicture));
        }
    });
}

fn buttons(ui: &mut Ui, has_mask: bool, actions: &mut Vec<Action>) {
    let mut push = |a: StartAction| actions.push(Action::Start(a));
    ui.horizontal_wrapped(|ui| {
        if ui
            .button(format!("📂 {}", t!("start-open")))
            .on_hover_text(t!("start-open-tip"))
            .clicked()
        {
            push(StartAction::OpenPicture);
        }
        if ui
            .button(format!("✖ {}", t!("start-clear")))
            .on_hover_text(t!("start-clear-tip"))
            .clicked()
        {
            push(StartAction::Clear);
        }
    });
    ui.horizontal_wrapped(|ui| {
        if ui
            .button(format!("✏ {}", t!("start-mask-paint")))
            .on_hover_text(t!("start-mask-paint-tip"))
            .clicked()
        {
            push(StartAction::Paint);
        }
        if ui
            .button(format!("🎭 {}", t!("start-mask-open")))
            .on_hover_text(t!("start-mask-open-tip"))
            .clicked()
        {
            push(StartAction::OpenMask);
        }
        if has_mask {
            if ui.button(t!("start-mask-invert")).clicked() {
                push(StartAction::InvertMask);
            }
            if ui.button(t!("start-mask-clear")).clicked() {
                push(StartAction::ClearMask);
            }
        }
    });
}

/// The outpaint arrows: each extends the canvas on its side by the chosen pixels.
fn outpaint(ui: &mut Ui, px: &mut u32, actions: &mut Vec<Action>) {
    use crate::source::outpaint::Sides;
    ui.horizontal_wrapped(|ui| {
        let l = ui.label(t!("outpaint-label"));
        ui.add(egui::DragValue::new(px).range(8..=1024).speed(8).suffix(" px"))
            .labelled_by(l.id)
            .on_hover_text(t!("outpaint-tip"));
        let n = (*px / 8 * 8).max(8);
        for (glyph, side, sides) in [
            (
                "⏴",
                t!("side-left"),
                Sides {
                    left: n,
                    ..Sides::default()
                },
            ),
            (
                "⏶",
                t!("side-top"),
                Sides {
                    top: n,
                    ..Sides::default()
                },
            ),
            (
                "⏷",
                t!("side-bottom"),
                Sides {
                    bottom: n,
                    ..Sides::default()
                },
            ),
            (
                "⏵",
                t!("side-right"),
                Sides {
                    right: n,
                    ..Sides::default()
                },
            ),
        ] {
            if ui
                .button(glyph)
                .on_hover_text(t!("outpaint-side-tip", side = side.as_str(), px = n))
                .clicked()
            {
                actions.push(Action::Start(StartAction::Extend(sides)));
            }
        }
    });
}

fn settings(ui: &mut Ui, state: &mut AppState, has_mask: bool) {
    let p = &mut state.settings.params;
    egui::Grid::new("start_grid")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            let l = ui.label(t!("strength-label"));
            ui.vertical(|ui| {
                ui.add(egui::Slider::new(&mut p.strength, 0.01..=1.0).fixed_decimals(2))
                    .labelled_by(l.id)
                    .on_hover_text(t!("strength-tip"));
                let run = ((f64::from(p.steps) * p.strength) as u32).min(p.steps);
                let text = t!("strength-steps", run = run, steps = p.steps);
                let warn = ui.visuals().warn_fg_color;
                let label = if run == 0 {
                    RichText::new(text).color(warn).small()
                } else {
                    RichText::new(text).weak().small()
                };
                ui.label(label);
            });
            ui.end_row();

            let l = ui.label(t!("resize-mode-label"));
            egui::ComboBox::from_id_salt("resize_mode")
                .selected_text(resize_label(p.resize_mode))
                .show_ui(ui, |ui| {
                    for mode in ResizeMode::ALL {
                        ui.selectable_value(&mut p.resize_mode, mode, resize_label(mode));
                    }
                })
                .response
                .labelled_by(l.id)
                .on_hover_text(t!("resize-mode-tip"));
            ui.end_row();

            if has_mask {
                let l = ui.label(t!("mask-blur-label"));
                ui.add(
                    egui::DragValue::new(&mut p.mask_blur)
                        .range(0..=MAX_MASK_BLUR)
                        .suffix(" px"),
                )
                .labelled_by(l.id)
                .on_hover_text(t!("mask-blur-tip"));
                ui.end_row();

                ui.label("");
                ui.checkbox(&mut p.keep_unmasked, t!("keep-unmasked"))
                    .on_hover_text(t!("keep-unmasked-tip"));
                ui.end_row();
            }
        });
}

fn resize_label(mode: ResizeMode) -> String {
    match mode {
        ResizeMode::Stretch => t!("resize-stretch"),
        ResizeMode::Crop => t!("resize-crop"),
        ResizeMode::Fill => t!("resize-fill"),
    }
}
