//! The LoRA browser beside the parameters: every LoRA file the models scan found, with its
//! preview, family and size. A click writes `<lora:NAME:W>` into the prompt at the slider's
//! weight (or changes the weight of the tag already there); the LoRAs the prompt uses are
//! highlighted and listed with a ✖ that takes their tag out. A LoRA made for another family
//! than the chosen model's is dimmed and says why instead of being added.

use egui::text::{LayoutJob, TextWrapping};
use egui::{Align, Align2, Color32, FontId, Layout, Rect, RichText, Sense, Stroke, Ui, Vec2, vec2};

use crate::format::ByteSize;
use crate::gui::history_state::ThumbSlot;
use crate::gui::loras_state::{
    FILTER_FROM, ModelArch, THUMB_SIZE, UsedLora, WEIGHT_RANGE, WEIGHT_STEP, family_label, matches_filter, model_arch,
    refusal, remove_lora, same_name, set_lora, used_loras, weight_text,
};
use crate::gui::models_state::ScanState;
use crate::gui::state::{Action, AppState};
use crate::hub::{BaseArch, LoraInfo, LoraKind};
use crate::t;
use crate::text::extra_networks::lora_tag_text;

/// Height of one LoRA's row.
const ROW_HEIGHT: f32 = THUMB_SIZE + 8.0;

/// The button that opens and closes the browser (drawn in the prompt's heading row).
pub fn toggle(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    let used = used_loras(&state.settings.params.prompt).len();
    let tip = if used > 0 {
        t!("loras-toggle-tip-used", count = used)
    } else {
        t!("loras-toggle-tip")
    };
    if ui
        .selectable_label(state.settings.loras_open, t!("loras-toggle"))
        .on_hover_text(tip)
        .clicked()
    {
        actions.push(Action::ToggleLoras);
    }
}

pub fn show(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    header(ui, state, actions);
    weight(ui, state);
    let used = used_loras(&state.settings.params.prompt);
    let model = model_arch(state);
    if !used.is_empty() {
        ui.add_space(4.0);
        in_prompt(ui, state, &used, model);
    }
    ui.separator();
    if state.models.loras.is_empty() {
        empty(ui, state, actions);
        return;
    }
    if state.models.loras.len() > FILTER_FROM {
        filter(ui, state);
    }
    let loras: Vec<LoraInfo> = state
        .models
        .loras
        .iter()
        .filter(|l| matches_filter(&l.name, &state.loras.filter))
        .cloned()
        .collect();
    if loras.is_empty() {
        ui.label(RichText::new(t!("loras-no-match", filter = state.loras.filter.trim())).weak());
        return;
    }
    egui::ScrollArea::vertical()
        .id_salt("lora_list")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for lora in &loras {
                let weight = used.iter().find(|u| same_name(&u.name, &lora.name)).map(|u| u.weight);
                row(ui, state, lora, weight, model);
            }
        });
}

fn header(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        ui.heading(t!("loras-heading"));
        if state.models.scan == ScanState::Running {
            ui.spinner();
        }
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if ui.button(t!("rescan")).on_hover_text(t!("loras-rescan-tip")).clicked() {
                actions.push(Action::Rescan);
            }
            if ui
                .button(t!("loras-open-folder"))
                .on_hover_text(state.loras.folder.display().to_string())
                .clicked()
            {
                actions.push(Action::OpenLoraFolder);
            }
        });
    });
    let found = state
        .models
        .loras
        .iter()
        .filter(|l| l.kind != LoraKind::NotALora)
        .count();
    if found > 0 {
        ui.label(RichText::new(t!("loras-count", count = found)).small().weak());
    }
}

fn weight(ui: &mut Ui, state: &mut AppState) {
    let w = &mut state.settings.lora_weight;
    if !w.is_finite() {
        *w = 1.0;
    }
    *w = w.clamp(*WEIGHT_RANGE.start(), *WEIGHT_RANGE.end());
    ui.horizontal(|ui| {
        let label = ui.label(t!("lora-weight-label"));
        // The slider takes the row, less its value box and the reset button.
        ui.spacing_mut().slider_width = (ui.available_width() - 130.0).clamp(80.0, 400.0);
        ui.add(
            egui::Slider::new(w, WEIGHT_RANGE)
                .step_by(WEIGHT_STEP)
                .fixed_decimals(2),
        )
        .labelled_by(label.id)
        .on_hover_text(t!("lora-weight-tip"));
        let reset = ui
            .add_enabled(
                (*w - 1.0).abs() > 1e-9,
                egui::Button::new(t!("lora-weight-reset")).small(),
            )
            .on_hover_text(t!("lora-weight-reset-tip"));
        if reset.clicked() {
            *w = 1.0;
        }
    });
    let example = lora_tag_text("NAME", *w);
    ui.label(RichText::new(t!("loras-click-hint", tag = example)).small().weak());
}

/// The LoRAs the prompt names, as chips: weight, and ✖ to take the tag out. A name that is
/// not on disk, or does not fit the model, says so in colour and on hover.
fn in_prompt(ui: &mut Ui, state: &mut AppState, used: &[UsedLora], model: Option<ModelArch>) {
    ui.label(RichText::new(t!("loras-in-prompt")).strong());
    let mut remove = None;
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = vec2(6.0, 6.0);
        for u in used {
            let found = state.models.loras.iter().find(|l| same_name(&l.name, &u.name));
            let problem = match found {
                None if state.models.scan == ScanState::Done => Some((
                    ui.visuals().error_fg_color,
                    t!("lora-not-found-tip", folder = state.loras.folder.display().to_string()),
                )),
                None => None,
                Some(l) => refusal(l.kind, model).map(|why| (ui.visuals().warn_fg_color, why)),
            };
            if chip(ui, u, problem) {
                remove = Some(u.name.clone());
            }
        }
    });
    if let Some(name) = remove {
        let prompt = &mut state.settings.params.prompt;
        *prompt = remove_lora(prompt, &name);
    }
}

/// One used LoRA: "name 0.6" on a pill with a ✖ at its end. Returns whether ✖ was clicked.
/// Sized before it is placed, so the row wraps whole chips.
fn chip(ui: &mut Ui, used: &UsedLora, problem: Option<(Color32, String)>) -> bool {
    let weight = used.weight.map_or_else(|| "?".to_string(), weight_text);
    let text = format!("{} {weight}", used.name);
    let color = problem
        .as_ref()
        .map_or_else(|| ui.visuals().strong_text_color(), |(c, _)| *c);
    let galley = ui
        .painter()
        .layout_no_wrap(text.clone(), FontId::proportional(13.0), color);
    let close = 18.0;
    let size = vec2(galley.size().x + 10.0 + close + 4.0, galley.size().y.max(close) + 4.0);
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &text));
    let painter = ui.painter();
    // A problem reads in its own colour on a neutral pill; a good one on the selection colour.
    let fill = match problem {
        Some(_) => ui.visuals().extreme_bg_color,
        None => ui.visuals().selection.bg_fill.gamma_multiply(0.45),
    };
    painter.rect_filled(rect, size.y / 2.0, fill);
    if problem.is_some() {
        painter.rect_stroke(rect, size.y / 2.0, Stroke::new(1.0, color), egui::StrokeKind::Inside);
    }
    let text_pos = egui::pos2(rect.left() + 10.0, rect.center().y - galley.size().y / 2.0);
    painter.galley(text_pos, galley, color);
    if let Some((_, why)) = &problem {
        response.on_hover_text(why);
    }
    let close_rect = Rect::from_center_size(
        egui::pos2(rect.right() - 4.0 - close / 2.0, rect.center().y),
        Vec2::splat(close),
    );
    let tip = t!("lora-remove-tip", name = used.name.as_str());
    let x = egui::Button::new(RichText::new("✖").size(11.0)).frame(false);
    ui.place(close_rect, x).on_hover_text(tip).clicked()
}

fn filter(ui: &mut Ui, state: &mut AppState) {
    ui.horizontal(|ui| {
        let label = ui.label(t!("loras-filter-label"));
        ui.add(
            egui::TextEdit::singleline(&mut state.loras.filter)
                .hint_text(t!("loras-filter-hint"))
                .desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
    });
    ui.add_space(2.0);
}

fn empty(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    if state.models.scan != ScanState::Done {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(t!("loras-scanning"));
        });
        return;
    }
    ui.label(RichText::new(t!("loras-none")).strong());
    ui.label(t!(
        "loras-none-where",
        folder = state.loras.folder.display().to_string()
    ));
    ui.add_space(4.0);
    if ui.button(t!("loras-open-folder")).clicked() {
        actions.push(Action::OpenLoraFolder);
    }
}

/// One LoRA: preview, name, family and size; highlighted with its weight when the prompt
/// uses it; dimmed when it does not fit the model. Clicking it is the whole interaction.
fn row(ui: &mut Ui, state: &mut AppState, lora: &LoraInfo, used: Option<Option<f64>>, model: Option<ModelArch>) {
    let refused = refusal(lora.kind, model);
    let enabled = lora.kind != LoraKind::NotALora;
    let width = ui.available_width();
    let sense = if enabled { Sense::click() } else { Sense::hover() };
    let (rect, response) = ui.allocate_exact_size(vec2(width, ROW_HEIGHT), sense);
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, enabled, &lora.name));
    let visuals = ui.visuals().clone();
    let painter = ui.painter_at(rect);
    let dim = refused.is_some();

    if used.is_some() {
        painter.rect_filled(rect, 6.0, visuals.selection.bg_fill.gamma_multiply(0.35));
        painter.rect_stroke(rect, 6.0, visuals.selection.stroke, egui::StrokeKind::Inside);
    } else if response.hovered() && enabled {
        painter.rect_filled(rect, 6.0, visuals.widgets.hovered.weak_bg_fill);
    }

    let thumb = Rect::from_min_size(rect.min + vec2(4.0, 4.0), Vec2::splat(THUMB_SIZE));
    let tint = if dim || !enabled {
        Color32::from_white_alpha(90)
    } else {
        Color32::WHITE
    };
    let slot = lora.preview.as_deref().map(|p| state.loras.preview(p));
    match slot {
        Some(ThumbSlot::Ready(texture, size)) => {
            // Cropped to a square from the middle, like a card's cover.
            let (w, h) = (size.x.max(1.0), size.y.max(1.0));
            let side = w.min(h);
            let uv = Rect::from_center_size(egui::pos2(0.5, 0.5), vec2(side / w, side / h));
            painter.image(texture, thumb, uv, tint);
        }
        Some(ThumbSlot::Pending) => {
            painter.rect_filled(thumb, 4.0, visuals.extreme_bg_color);
        }
        Some(ThumbSlot::Failed(_)) | None => placeholder(&painter, thumb, lora.kind, dim || !enabled, &visuals),
    }

    // The weight pill on the right of a used LoRA.
    let mut text_right = rect.right() - 8.0;
    if let Some(weight) = used {
        let text = weight.map_or_else(|| "?".to_string(), weight_text);
        let galley = painter.layout_no_wrap(text, FontId::proportional(13.0), visuals.strong_text_color());
        let pill = Rect::from_center_size(
            egui::pos2(rect.right() - 10.0 - galley.size().x / 2.0 - 6.0, rect.center().y),
            galley.size() + vec2(12.0, 4.0),
        );
        painter.rect_filled(pill, 8.0, visuals.selection.bg_fill);
        painter.galley(pill.center() - galley.size() / 2.0, galley, visuals.strong_text_color());
        text_right = pill.left() - 6.0;
    }

    let text_left = thumb.right() + 10.0;
    let text_width = (text_right - text_left).max(10.0);
    let name_color = if dim || !enabled {
        visuals.weak_text_color()
    } else {
        visuals.strong_text_color()
    };
    let mut name = LayoutJob::simple_singleline(lora.name.clone(), FontId::proportional(14.0), name_color);
    name.wrap = TextWrapping::truncate_at_width(text_width);
    let name = painter.layout_job(name);
    let name_pos = egui::pos2(text_left, rect.center().y - name.size().y - 1.0);
    painter.galley(name_pos, name, name_color);

    let family = family_label(lora.kind);
    let (details, details_color) = match (&refused, enabled) {
        (_, false) => (family, visuals.weak_text_color()),
        (Some(_), true) => (
            t!(
                "lora-details-other-family",
                family = family,
                size = ByteSize(lora.size).to_string()
            ),
            visuals.warn_fg_color,
        ),
        (None, true) => (format!("{family} · {}", ByteSize(lora.size)), visuals.weak_text_color()),
    };
    // A label, not paint: screen readers (and tests) read the family and size too.
    let details_rect = Rect::from_min_size(
        egui::pos2(text_left, rect.center().y + 1.0),
        vec2(text_width, ROW_HEIGHT / 2.0 - 5.0),
    );
    let mut details_ui = ui.new_child(
        egui::UiBuilder::new()
            .max_rect(details_rect)
            .layout(Layout::left_to_right(Align::Min)),
    );
    details_ui.add(
        egui::Label::new(RichText::new(details).size(12.0).color(details_color))
            .truncate()
            .selectable(false),
    );

    let weight = state.settings.lora_weight;
    let tip = match (&refused, used) {
        (Some(why), _) => why.clone(),
        (None, Some(_)) => t!("lora-set-weight-tip", tag = lora_tag_text(&lora.name, weight)),
        (None, None) => t!("lora-add-tip", tag = lora_tag_text(&lora.name, weight)),
    };
    let response = response.on_hover_text(format!("{tip}\n{}", lora.path.display()));
    if response.clicked() {
        match refused {
            Some(why) => state.warn(t!("lora-refused", name = lora.name.as_str(), reason = why)),
            None => {
                let prompt = &mut state.settings.params.prompt;
                *prompt = set_lora(prompt, &lora.name, weight);
            }
        }
    }
}

/// A LoRA without a preview: a tile in its family's colour with the family's short name.
fn placeholder(painter: &egui::Painter, rect: Rect, kind: LoraKind, dim: bool, visuals: &egui::Visuals) {
    let (short, color) = match kind {
        LoraKind::For(BaseArch::Sd1) => ("SD1", Color32::from_rgb(70, 110, 170)),
        LoraKind::For(BaseArch::Sd2) => ("SD2", Color32::from_rgb(70, 140, 120)),
        LoraKind::For(BaseArch::Sdxl) => ("XL", Color32::from_rgb(150, 90, 160)),
        LoraKind::Unknown => ("?", Color32::from_gray(110)),
        LoraKind::NotALora => ("—", Color32::from_gray(80)),
    };
    let fill = if dim { color.gamma_multiply(0.35) } else { color };
    painter.rect_filled(rect, 4.0, fill);
    painter.rect_stroke(
        rect,
        4.0,
        Stroke::new(1.0, visuals.widgets.noninteractive.bg_stroke.color),
        egui::StrokeKind::Inside,
    );
    let text = if dim {
        Color32::from_white_alpha(120)
    } else {
        Color32::WHITE
    };
    painter.text(
        rect.center(),
        Align2::CENTER_CENTER,
        short,
        FontId::proportional(15.0),
        text,
    );
}
