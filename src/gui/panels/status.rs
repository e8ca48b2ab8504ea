//! The bottom line: progress with step n/N, speed and ETA while working; otherwise the last
//! message (errors in red, warnings in yellow).

use egui::{RichText, Ui};

use crate::format::format_duration;
use crate::gui::state::ModelStatus;
use crate::gui::state::{AppState, StatusKind};
use crate::model::LoadStage;
use crate::t;

pub fn show(ui: &mut Ui, state: &AppState) {
    ui.horizontal(|ui| {
        if let ModelStatus::Loading { path, stage } = &state.model {
            ui.spinner();
            let what = match stage {
                Some(LoadStage::TextEncoder(_)) => t!("stage-text-encoder"),
                Some(LoadStage::Unet) => t!("stage-unet"),
                Some(LoadStage::Vae) => t!("stage-vae"),
                None => t!("stage-files"),
            };
            ui.label(t!(
                "status-loading",
                name = crate::model::display_name(path),
                stage = what
            ));
            return;
        }
        if let Some(run) = &state.running {
            let fraction = if run.total > 0 {
                run.step as f32 / run.total as f32
            } else {
                0.0
            };
            let per_step = run.elapsed.as_secs_f32() / run.step.max(1) as f32;
            let speed = if per_step >= 1.0 || per_step == 0.0 {
                t!("speed-seconds-per-step", value = format!("{per_step:.1}"))
            } else {
                t!("speed-steps-per-second", value = format!("{:.1}", 1.0 / per_step))
            };
            let text = if run.decoding {
                t!("status-decoding")
            } else if run.step == 0 {
                t!("status-starting")
            } else {
                t!(
                    "status-step",
                    step = run.step,
                    total = run.total,
                    speed = speed,
                    eta = format_duration(run.eta)
                )
            };
            let text = if run.batch > 1 {
                t!(
                    "status-image",
                    image = run.image + 1,
                    batch = run.batch,
                    progress = text
                )
            } else {
                text
            };
            ui.add(egui::ProgressBar::new(fraction).desired_width(260.0).show_percentage());
            ui.label(text);
            if !state.queue.is_empty() {
                ui.label(RichText::new(t!("status-queued", count = state.queue.len())).weak());
            }
            return;
        }
        if let Some(status) = &state.status {
            let color = match status.kind {
                StatusKind::Info => ui.visuals().text_color(),
                StatusKind::Warning => ui.visuals().warn_fg_color,
                StatusKind::Error => ui.visuals().error_fg_color,
            };
            ui.label(RichText::new(&status.text).color(color));
        } else {
            ui.label(RichText::new(t!("status-ready")).weak());
        }
    });
}
