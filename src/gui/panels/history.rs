//! The history view: a "Create | History" switch, then a search box and filters above a
//! virtualised grid of thumbnails, and the opened picture with its parameters and actions.
//!
//! Only the rows on screen are laid out (`ScrollArea::show_rows`), and only their pages of
//! results are asked for, so 10,000 entries cost what 40 do. Nothing here touches the
//! database or the disk: results, thumbnails and the full image arrive through
//! [`HistoryView`](crate::gui::history_state::HistoryView), filled by the app's threads.

use std::time::Instant;

use egui::text::{LayoutJob, TextWrapping};
use egui::{Align2, Color32, FontId, Rect, RichText, Sense, Stroke, Ui, Vec2, vec2};

use crate::gui::history_state::{
    DateRange, DetailImage, HistoryAction, PAGE_SIZE, ThumbCache, ThumbSlot, matches_label,
};
use crate::gui::state::{Action, AppState};
use crate::history::Entry;
use crate::history::entry::a1111_display;
use crate::t;

/// Smallest side of a thumbnail cell, in points (cells widen to fill a row).
pub const CELL: f32 = 150.0;
/// Height of the one-line prompt under each thumbnail.
const CAPTION: f32 = 18.0;
/// Star colour for favourites.
const GOLD: Color32 = Color32::from_rgb(240, 190, 40);

fn act(actions: &mut Vec<Action>, a: HistoryAction) {
    actions.push(Action::History(a));
}

/// The window's language, switched at once (no restart).
fn language_picker(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    let current = state.catalog.code();
    let shown = state
        .languages
        .iter()
        .find(|l| l.code == current)
        .map_or(current, |l| l.name.as_str());
    let combo = egui::ComboBox::from_id_salt("language")
        .selected_text(shown)
        .show_ui(ui, |ui| {
            for language in &state.languages {
                if ui.selectable_label(language.code == current, &language.name).clicked() && language.code != current {
                    actions.push(Action::SetLanguage(language.code.clone()));
                }
            }
        })
        .response
        .on_hover_text(t!("language-tip"));
    let globe = ui.label("🌐");
    combo.labelled_by(globe.id);
    if current.starts_with("zh") && state.cjk_font == Some(false) {
        // Said in English as well: without the font, the Chinese sentence is boxes.
        ui.label(
            RichText::new(t!("no-cjk-font"))
                .color(ui.visuals().warn_fg_color)
                .small(),
        );
    }
}

/// The switch between making pictures and browsing them (remembered between runs).
pub fn tabs(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        let history = state.settings.show_history;
        if ui
            .selectable_label(!history, RichText::new(t!("create")).strong())
            .clicked()
            && history
        {
            act(actions, HistoryAction::ShowHistory(false));
        }
        if ui
            .selectable_label(history, RichText::new(t!("history")).strong())
            .clicked()
            && !history
        {
            act(actions, HistoryAction::ShowHistory(true));
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.selectable_label(state.about_open, t!("about-button")).clicked() {
                actions.push(Action::ToggleAbout);
            }
            language_picker(ui, state, actions);
            ui.label(RichText::new(t!("drop-a-png-on-the-window")).weak().small());
        });
    });
}

/// Search box, model / date / favourites filters and the number of matches.
pub fn toolbar(ui: &mut Ui, state: &mut AppState) {
    let h = &mut state.history;
    ui.horizontal_wrapped(|ui| {
        let label = ui.label(t!("search"));
        let search = egui::TextEdit::singleline(&mut h.filters.search)
            .hint_text(t!("words-from-the-prompt-any-language"))
            .desired_width(240.0)
            .id_salt("history_search");
        if ui.add(search).labelled_by(label.id).changed() {
            h.search_edited = Some(Instant::now());
        }
        if !h.filters.search.is_empty() && ui.small_button(t!("clear")).clicked() {
            h.filters.search.clear();
            h.search_edited = None;
        }
        let label = ui.label(t!("model"));
        let model_text = h.filters.model.clone().unwrap_or_else(|| t!("all-models"));
        egui::ComboBox::from_id_salt("history_model")
            .selected_text(model_text)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut h.filters.model, None, t!("all-models"));
                for (name, n) in &h.models {
                    let shown = if name.is_empty() {
                        t!("unknown-model")
                    } else {
                        name.clone()
                    };
                    ui.selectable_value(&mut h.filters.model, Some(name.clone()), format!("{shown} ({n})"));
                }
            })
            .response
            .labelled_by(label.id);
        let label = ui.label(t!("date"));
        egui::ComboBox::from_id_salt("history_date")
            .selected_text(h.filters.date.label())
            .show_ui(ui, |ui| {
                for range in DateRange::ALL {
                    ui.selectable_value(&mut h.filters.date, range, range.label());
                }
            })
            .response
            .labelled_by(label.id);
        ui.checkbox(&mut h.filters.favourites_only, t!("favourites-only"));
        ui.separator();
        match h.total {
            Some(n) => {
                let r = ui.label(RichText::new(matches_label(n)).strong());
                if let Some(t) = h.last_query_time {
                    r.on_hover_text(t!("history-query-time", ms = format!("{:.1}", t.as_secs_f64() * 1e3)));
                }
            }
            None if h.error.is_none() => {
                ui.spinner();
            }
            None => {}
        }
        if h.requested_generation != h.generation && h.total.is_some() {
            ui.spinner();
        }
    });
}

/// The thumbnail grid, newest first. Only visible rows are laid out.
pub fn grid(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    let h = &mut state.history;
    h.visible_pages.clear();
    if let Some(error) = &h.error {
        ui.centered_and_justified(|ui| {
            ui.label(
                RichText::new(t!("history-unavailable", error = error.as_str())).color(ui.visuals().error_fg_color),
            );
        });
        return;
    }
    let Some(total) = h.total else {
        ui.centered_and_justified(|ui| ui.spinner());
        return;
    };
    if total == 0 {
        let text = if h.filters == Default::default() {
            t!("history-empty")
        } else {
            t!("history-no-matches")
        };
        ui.centered_and_justified(|ui| ui.label(RichText::new(text).weak().size(16.0)));
        return;
    }
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let gap = ui.spacing().item_spacing.x;
    let width = ui.available_width() - ui.spacing().scroll.bar_width - ui.spacing().scroll.bar_outer_margin;
    let cols = (((width + gap) / (CELL + gap)).floor() as usize).max(1);
    // Cells grow a little so that the row fills the width instead of leaving a gap.
    let side = ((width + gap) / cols as f32 - gap).max(CELL);
    let rows = total.div_ceil(cols);
    let mut area = egui::ScrollArea::vertical()
        .id_salt("history_grid")
        .auto_shrink([false, false]);
    if std::mem::take(&mut h.scroll_to_top) {
        area = area.vertical_scroll_offset(0.0);
    }
    let selected = h.selected.as_ref().map(|e| e.id);
    area.show_rows(ui, side + CAPTION, rows, |ui, range| {
        for row in range {
            ui.horizontal(|ui| {
                for index in (row * cols..(row + 1) * cols).take_while(|i| *i < total) {
                    let page = index / PAGE_SIZE;
                    h.visible_pages.insert(page);
                    let entry = h.pages.get(&page).and_then(|p| p.get(index % PAGE_SIZE));
                    cell(ui, side, entry, &mut h.thumbs, selected, actions);
                }
            });
        }
    });
}

/// What a screen reader (and a test) calls a cell: its prompt and seed.
pub fn cell_label(entry: &Entry) -> String {
    let prompt = entry.params.prompt.trim();
    let prompt = if prompt.is_empty() {
        t!("empty-prompt")
    } else {
        prompt.to_owned()
    };
    t!("history-cell", prompt = prompt, seed = entry.params.seed.to_string())
}

fn cell(
    ui: &mut Ui,
    side: f32,
    entry: Option<&Entry>,
    thumbs: &mut ThumbCache,
    selected: Option<i64>,
    actions: &mut Vec<Action>,
) {
    let (rect, response) = ui.allocate_exact_size(vec2(side, side + CAPTION), Sense::click());
    let image_rect = Rect::from_min_size(rect.min, Vec2::splat(side));
    let painter = ui.painter_at(rect);
    painter.rect_filled(image_rect, 4.0, ui.visuals().extreme_bg_color);
    let Some(entry) = entry else {
        return; // its page is on its way
    };
    let label = cell_label(entry);
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &label));
    match thumbs.slot(entry.id, &entry.image_path) {
        ThumbSlot::Ready(texture, size) => {
            let scale = (side / size.x).min(side / size.y);
            let shown = Rect::from_center_size(image_rect.center(), size * scale);
            let uv = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
            painter.image(texture, shown, uv, Color32::WHITE);
        }
        ThumbSlot::Failed(reason) => {
            painter.text(
                image_rect.center(),
                Align2::CENTER_CENTER,
                if reason == "file missing" {
                    t!("thumb-file-missing")
                } else {
                    t!("thumb-unreadable")
                },
                FontId::proportional(13.0),
                ui.visuals().weak_text_color(),
            );
        }
        ThumbSlot::Pending => {}
    }
    if entry.favourite {
        paint_star(&painter, image_rect.right_top() + vec2(-14.0, 14.0), 9.0, GOLD);
    }
    if selected == Some(entry.id) {
        let stroke = Stroke::new(3.0, ui.visuals().selection.stroke.color);
        painter.rect_stroke(image_rect, 4.0, stroke, egui::StrokeKind::Inside);
    } else if response.hovered() {
        let stroke = ui.visuals().widgets.hovered.bg_stroke;
        painter.rect_stroke(image_rect, 4.0, stroke, egui::StrokeKind::Inside);
    }
    let mut job = LayoutJob::simple_singleline(
        entry.params.prompt.replace('\n', " "),
        FontId::proportional(12.0),
        ui.visuals().weak_text_color(),
    );
    job.wrap = TextWrapping::truncate_at_width(side);
    let galley = painter.layout_job(job);
    painter.galley(image_rect.left_bottom() + vec2(0.0, 3.0), galley, Color32::WHITE);
    if response.clicked() {
        act(actions, HistoryAction::Open(Box::new(entry.clone())));
    }
    response.on_hover_text(&label);
}

/// The opened picture: full image, actions, every parameter.
pub fn details(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    let h = &state.history;
    let Some(entry) = h.selected.as_ref() else {
        return;
    };
    egui::ScrollArea::vertical().id_salt("history_detail").show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.heading(t!("picture"));
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button(t!("close")).clicked() {
                    act(actions, HistoryAction::CloseDetail);
                }
            });
        });
        full_image(ui, &h.detail, entry);
        ui.add_space(6.0);
        // The picture above takes a different number of widgets while it loads; a scope of
        // its own keeps the buttons' ids (what screen readers and clicks address) stable.
        ui.push_id("detail_actions", |ui| {
            detail_actions(ui, entry, !matches!(h.detail, DetailImage::Unavailable(_)), actions)
        });
        start_picture(ui, &h.detail_start, entry);
        ui.separator();
        parameters_grid(ui, entry);
    });
}

/// The picture an img2img or inpainting job started from, its mask tinted red.
fn start_picture(ui: &mut Ui, start: &DetailImage, entry: &Entry) {
    if entry.params.init_image.is_none() {
        return;
    }
    ui.separator();
    let heading = if entry.params.mask.is_some() {
        t!("started-from-masked")
    } else {
        t!("started-from")
    };
    ui.label(RichText::new(heading).strong());
    match start {
        DetailImage::Ready(texture) => {
            let size = crate::gui::start_state::preview_size(texture.size()[0] as u32, texture.size()[1] as u32, 160.0);
            ui.add(egui::Image::new((texture.id(), size)));
        }
        DetailImage::Unavailable(why) => {
            ui.label(RichText::new(t!("start-not-kept", reason = why.as_str())).weak());
        }
        DetailImage::Loading | DetailImage::None => {
            ui.spinner();
        }
    }
}

/// The picture's size in the detail panel: as wide as the panel, at most 420 high, at most 2×.
fn shown_size(size: Vec2, width: f32) -> Vec2 {
    let scale = (width / size.x).min(420.0 / size.y).min(2.0);
    size * scale
}

fn full_image(ui: &mut Ui, detail: &DetailImage, entry: &Entry) {
    let width = ui.available_width();
    match detail {
        DetailImage::Ready(texture) => {
            ui.add(egui::Image::new((texture.id(), shown_size(texture.size_vec2(), width))));
        }
        DetailImage::Loading | DetailImage::None => {
            // The space the picture will take, so the buttons below do not jump when it arrives.
            let size = vec2(entry.params.width.max(1) as f32, entry.params.height.max(1) as f32);
            let (rect, _) = ui.allocate_exact_size(shown_size(size, width), Sense::hover());
            ui.put(rect, egui::Spinner::new());
        }
        DetailImage::Unavailable(why) => {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_min_size(vec2(width - 16.0, 120.0));
                ui.vertical_centered(|ui| {
                    ui.add_space(30.0);
                    ui.label(RichText::new(t!("the-image-file-is-not-available")).strong());
                    ui.label(RichText::new(why).weak());
                    ui.label(RichText::new(entry.image_path.display().to_string()).weak().small());
                    ui.label(t!("its-settings-can-still-be-used"));
                });
            });
        }
    }
}

fn detail_actions(ui: &mut Ui, entry: &Entry, file_ok: bool, actions: &mut Vec<Action>) {
    ui.horizontal_wrapped(|ui| {
        let boxed = || Box::new(entry.clone());
        if ui
            .button(t!("use-these-settings"))
            .on_hover_text(t!("restore-every-parameter-the-seed-and"))
            .clicked()
        {
            act(actions, HistoryAction::UseSettings(boxed()));
        }
        if ui
            .button(t!("re-run"))
            .on_hover_text(t!("restore-the-settings-and-generate"))
            .clicked()
        {
            act(actions, HistoryAction::Rerun(boxed()));
        }
        if ui
            .button(format!("🖼 {}", t!("use-as-start")))
            .on_hover_text(t!("use-as-start-tip"))
            .clicked()
        {
            actions.push(Action::Start(crate::gui::start_state::StartAction::UseFile(
                entry.image_path.clone(),
            )));
            act(actions, HistoryAction::ShowHistory(false));
        }
        let mut favourite = entry.favourite;
        if ui.checkbox(&mut favourite, t!("favourite")).changed() {
            act(
                actions,
                HistoryAction::SetFavourite {
                    id: entry.id,
                    favourite,
                },
            );
        }
        if ui.button(t!("copy-prompt")).clicked() {
            act(actions, HistoryAction::CopyPrompt(entry.params.prompt.clone()));
        }
        if ui
            .add_enabled(file_ok, egui::Button::new(t!("show-in-folder")))
            .clicked()
        {
            act(actions, HistoryAction::ShowInFolder(entry.image_path.clone()));
        }
        if ui.button(t!("delete")).clicked() {
            act(actions, HistoryAction::AskDelete(boxed()));
        }
    });
}

fn parameters_grid(ui: &mut Ui, entry: &Entry) {
    let p = &entry.params;
    let row = |ui: &mut Ui, key: String, value: String| {
        ui.label(RichText::new(key).weak());
        ui.add(egui::Label::new(value).wrap().selectable(true));
        ui.end_row();
    };
    egui::Grid::new("history_params")
        .num_columns(2)
        .spacing([10.0, 4.0])
        .striped(true)
        .show(ui, |ui| {
            row(ui, t!("prompt"), p.prompt.clone());
            if !p.negative_prompt.is_empty() {
                row(ui, t!("negative-prompt"), p.negative_prompt.clone());
            }
            row(ui, t!("seed"), p.seed.to_string());
            row(ui, t!("steps"), p.steps.to_string());
            row(ui, t!("sampler"), a1111_display(p.sampler));
            row(
                ui,
                t!("cfg-scale"),
                crate::output::parameters::format_guidance(p.guidance),
            );
            row(ui, t!("size"), format!("{}×{}", p.width, p.height));
            if p.is_img2img() || p.hires.is_some() {
                row(
                    ui,
                    t!("strength-label"),
                    crate::output::parameters::format_guidance(p.strength),
                );
            }
            if let Some(hires) = &p.hires {
                let (w, hgt) = p.output_size();
                row(
                    ui,
                    t!("hires-heading"),
                    format!(
                        "×{} → {w}×{hgt}, {}",
                        crate::output::parameters::format_guidance(hires.scale),
                        hires.upscaler.a1111_name()
                    ),
                );
            }
            let model = match (&p.model, &p.model_hash) {
                (m, _) if m.is_empty() => t!("not-recorded"),
                (m, Some(hash)) => format!("{m} ({hash})"),
                (m, None) => m.clone(),
            };
            row(ui, t!("model"), model);
            if p.batch_size > 1 {
                row(
                    ui,
                    t!("batch"),
                    t!("batch-position", index = p.batch_index + 1, count = p.batch_size),
                );
            }
            let created = entry
                .created_at
                .to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string();
            row(ui, t!("made"), created);
            if let Some(ms) = entry.duration_ms {
                row(
                    ui,
                    t!("took"),
                    t!("seconds", value = format!("{:.1}", ms as f64 / 1000.0)),
                );
            }
            row(ui, t!("file"), entry.image_path.display().to_string());
            for (k, v) in &p.extra {
                row(ui, k.clone(), v.clone());
            }
        });
}

/// A five-pointed star, painted (egui's default fonts have no star glyph): a pentagon and
/// five triangles, each convex, so they fill correctly.
fn paint_star(painter: &egui::Painter, centre: egui::Pos2, radius: f32, fill: Color32) {
    let point = |i: usize, r: f32| {
        let a = -std::f32::consts::FRAC_PI_2 + i as f32 * std::f32::consts::PI / 5.0;
        centre + r * vec2(a.cos(), a.sin())
    };
    let inner = radius * 0.42;
    let pentagon: Vec<_> = (0..5).map(|k| point(2 * k + 1, inner)).collect();
    painter.add(egui::Shape::convex_polygon(pentagon, fill, Stroke::NONE));
    for k in 0..5 {
        let tip = vec![
            point((2 * k + 9) % 10, inner),
            point(2 * k, radius),
            point(2 * k + 1, inner),
        ];
        painter.add(egui::Shape::convex_polygon(tip, fill, Stroke::NONE));
    }
}

/// Asks before deleting; the file goes too only when the box is ticked.
pub fn delete_dialog(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    let Some(confirm) = state.history.confirm_delete.as_mut() else {
        return;
    };
    let mut close = false;
    let modal = egui::Modal::new(egui::Id::unique("history_delete")).show(ui.ctx(), |ui| {
        ui.set_max_width(420.0);
        ui.heading(t!("delete-this-picture-from-the-history"));
        let mut prompt: String = confirm.entry.params.prompt.chars().take(120).collect();
        if confirm.entry.params.prompt.chars().count() > 120 {
            prompt.push('…');
        }
        ui.label(RichText::new(prompt).italics());
        ui.add_space(6.0);
        ui.checkbox(&mut confirm.also_file, t!("also-delete-the-file"));
        ui.label(
            RichText::new(confirm.entry.image_path.display().to_string())
                .weak()
                .small(),
        );
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            let text = if confirm.also_file {
                t!("delete-entry-and-file")
            } else {
                t!("delete-entry")
            };
            if ui
                .button(RichText::new(text).color(ui.visuals().error_fg_color))
                .clicked()
            {
                act(
                    actions,
                    HistoryAction::Delete {
                        id: confirm.entry.id,
                        delete_file: confirm.also_file,
                    },
                );
                close = true;
            }
            if ui.button(t!("cancel")).clicked() {
                close = true;
            }
        });
    });
    if close || modal.should_close() {
        state.history.confirm_delete = None;
    }
}

/// A hint over the whole window while files are dragged over it.
pub fn drop_hint(ctx: &egui::Context) {
    if ctx.input(|i| i.raw.hovered_files.is_empty()) {
        return;
    }
    let layer = egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop_hint"));
    let painter = ctx.layer_painter(layer);
    let rect = ctx.content_rect();
    painter.rect_filled(rect, 0.0, Color32::from_black_alpha(160));
    painter.text(
        rect.center(),
        Align2::CENTER_CENTER,
        t!("drop-hint"),
        FontId::proportional(24.0),
        Color32::WHITE,
    );
}
