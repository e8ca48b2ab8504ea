//! The hires-fix section of the left panel (A1111's): a second, img2img pass at a larger
//! size — the upscale, its steps, the upscaler and the denoising strength. Text-to-image only.

use egui::{RichText, Ui};

use crate::gui::state::AppState;
use crate::recipe::{HiresFix, HiresUpscaler};
use crate::t;

pub fn show(ui: &mut Ui, state: &mut AppState) {
    let p = &mut state.settings.params;
    let heading = match p.hires_size() {
        Some((w, h)) => t!("hires-heading-on", width = w, height = h),
        None => t!("hires-heading"),
    };
    egui::CollapsingHeader::new(heading)
        .id_salt("hires_fix")
        .show(ui, |ui| {
            if p.init_image.is_some() {
                ui.label(RichText::new(t!("hires-not-with-start")).weak());
                return;
            }
            let mut on = p.hires.is_some();
            if ui
                .checkbox(&mut on, t!("hires-enable"))
                .on_hover_text(t!("hires-enable-tip"))
                .changed()
            {
                p.hires = on.then(HiresFix::default);
            }
            let Some(hires) = p.hires.as_mut() else { return };
            egui::Grid::new("hires_grid")
                .num_columns(2)
                .spacing([8.0, 6.0])
                .show(ui, |ui| {
                    let l = ui.label(t!("hires-scale-label"));
                    ui.add(
                        egui::Slider::new(&mut hires.scale, 1.05..=4.0)
                            .step_by(0.05)
                            .fixed_decimals(2)
                            .suffix("×"),
                    )
                    .labelled_by(l.id);
                    ui.end_row();

                    let l = ui.label(t!("hires-steps-label"));
                    ui.add(egui::DragValue::new(&mut hires.steps).range(0..=150))
                        .labelled_by(l.id)
                        .on_hover_text(t!("hires-steps-tip"));
                    ui.end_row();

                    let l = ui.label(t!("hires-upscaler-label"));
                    egui::ComboBox::from_id_salt("hires_upscaler")
                        .selected_text(upscaler_label(hires.upscaler))
                        .show_ui(ui, |ui| {
                            for u in HiresUpscaler::ALL {
                                ui.selectable_value(&mut hires.upscaler, u, upscaler_label(u));
                            }
                        })
                        .response
                        .labelled_by(l.id)
                        .on_hover_text(t!("hires-upscaler-tip"));
                    ui.end_row();

                    let l = ui.label(t!("strength-label"));
                    ui.add(egui::Slider::new(&mut p.strength, 0.01..=1.0).fixed_decimals(2))
                        .labelled_by(l.id)
                        .on_hover_text(t!("hires-strength-tip"));
                    ui.end_row();
                });
        });
}

fn upscaler_label(u: HiresUpscaler) -> String {
    match u {
        HiresUpscaler::Latent => t!("hires-upscaler-latent"),
        HiresUpscaler::LatentNearest => t!("hires-upscaler-nearest"),
        HiresUpscaler::Lanczos => t!("hires-upscaler-lanczos"),
    }
}
