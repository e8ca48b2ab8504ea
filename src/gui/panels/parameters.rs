//! The left panel: prompt, negative prompt with token counters, every generation setting,
//! the model picker, Generate/Cancel and the queue.

use egui::{Key, KeyboardShortcut, Modifiers, RichText, Ui};

use crate::gui::state::{Action, AppState, ModelStatus};
use crate::gui::token_counter::Counted;
use crate::model::single_file::Prediction;
use crate::recipe::{MAX_CLIP_SKIP, NoiseKind, PromptSyntax};
use crate::schedulers::SamplerKind;
use crate::t;

/// Size presets (all multiples of 8).
pub const SIZE_PRESETS: &[(u32, u32)] = &[
    (512, 512),
    (512, 768),
    (768, 512),
    (768, 768),
    (1024, 1024),
    (832, 1216),
    (1216, 832),
];

/// A sampler's name as A1111 shows it ("Euler a", "DPM++ 2M Karras": the same in every
/// language); only "the model's own" is worded.
pub fn sampler_label(kind: SamplerKind) -> String {
    match kind {
        SamplerKind::Default => t!("sampler-model-default"),
        other => other.label().to_owned(),
    }
}

/// "Square 512", "Portrait 512×768", … in the window's language.
fn preset_name(w: u32, h: u32) -> String {
    let size = format!("{w}×{h}");
    match w.cmp(&h) {
        std::cmp::Ordering::Equal => t!("size-square", side = w),
        std::cmp::Ordering::Less => t!("size-portrait", size = size),
        std::cmp::Ordering::Greater => t!("size-landscape", size = size),
    }
}

pub fn show(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    // Ctrl+Enter must be consumed before the text boxes see it, or they insert a newline.
    let generate_shortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::Enter);
    if ui.input_mut(|i| i.consume_shortcut(&generate_shortcut)) {
        actions.push(Action::Generate);
    }
    if ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Escape)) && state.running.is_some() {
        actions.push(Action::Cancel);
    }

    egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
        model_picker(ui, state, actions);
        ui.separator();
        prompts(ui, state, actions);
        ui.separator();
        settings_grid(ui, state, actions);
        super::start::show(ui, state, actions);
        super::hires::show(ui, state);
        advanced(ui, state);
        ui.separator();
        buttons(ui, state, actions);
        queue(ui, state, actions);
    });
}

fn model_picker(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        let label = ui.label(RichText::new(t!("model-label")).strong());
        let current = match &state.model {
            ModelStatus::Ready(info) => info.name.clone(),
            ModelStatus::Loading { path, .. } => {
                t!("model-loading", name = crate::model::display_name(path))
            }
            ModelStatus::Failed { path, .. } => {
                t!("model-failed", name = crate::model::display_name(path))
            }
            ModelStatus::None => t!("model-none"),
        };
        egui::ComboBox::from_id_salt("model_picker")
            .selected_text(current)
            .width((ui.available_width() - 70.0).clamp(120.0, 260.0))
            .show_ui(ui, |ui| super::models::picker_items(ui, state, actions))
            .response
            .labelled_by(label.id);
        if ui.button("📂").on_hover_text(t!("open-model-folder")).clicked() {
            actions.push(Action::OpenModelDialog);
        }
        let options = ui
            .selectable_label(state.model_options_open, "⚙")
            .on_hover_text(t!("model-options-tip"));
        if options.clicked() {
            state.model_options_open = !state.model_options_open;
        }
    });
    if state.model_options_open {
        model_options(ui, state, actions);
    }
}

/// The chosen model's load options: a separate VAE (A1111's VAE dropdown) and what the UNet
/// predicts (for files that give no clue). A change loads the model again.
fn model_options(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    let Some(model) = state.settings.model.as_deref() else {
        ui.label(RichText::new(t!("model-options-no-model")).weak());
        return;
    };
    let choice = state.settings.choice_for(model);
    let mut wanted = choice.clone();
    let file_name = |p: &std::path::Path| {
        p.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    egui::Grid::new("model_options")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            let l = ui.label(t!("vae-label"));
            // A file without a VAE of its own borrows its family's (or needs one chosen).
            let none_label = match (
                state.models.find_local(model).is_some_and(|m| m.needs_vae),
                state.models.vae_donor(model),
            ) {
                (false, _) => t!("vae-own"),
                (true, Some(donor)) => t!("vae-family", model = donor.name.as_str()),
                (true, None) => t!("vae-none-in-file"),
            };
            let shown = wanted.vae.as_deref().map_or_else(|| none_label.clone(), file_name);
            egui::ComboBox::from_id_salt("vae_choice")
                .selected_text(shown)
                .width(200.0)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut wanted.vae, None, none_label.clone());
                    for vae in &state.models.vaes {
                        ui.selectable_value(&mut wanted.vae, Some(vae.clone()), file_name(vae))
                            .on_hover_text(vae.display().to_string());
                    }
                })
                .response
                .labelled_by(l.id)
                .on_hover_text(t!("vae-tip"));
            ui.end_row();

            let l = ui.label(t!("prediction-label"));
            egui::ComboBox::from_id_salt("prediction_choice")
                .selected_text(prediction_label(wanted.prediction))
                .width(200.0)
                .show_ui(ui, |ui| {
                    for p in [None, Some(Prediction::Epsilon), Some(Prediction::V)] {
                        ui.selectable_value(&mut wanted.prediction, p, prediction_label(p));
                    }
                })
                .response
                .labelled_by(l.id)
                .on_hover_text(t!("prediction-tip"));
            ui.end_row();
        });
    if wanted != choice {
        actions.push(Action::SetModelChoice(wanted));
    }
}

fn prediction_label(p: Option<Prediction>) -> String {
    match p {
        None => t!("prediction-auto"),
        Some(Prediction::Epsilon) => t!("prediction-epsilon"),
        Some(Prediction::V) => t!("prediction-v"),
    }
}

/// The id `TextEdit::id_salt(salt)` gives its box in this `ui`.
fn text_edit_id(ui: &Ui, salt: &'static str) -> egui::Id {
    ui.make_persistent_id(egui::IdSalt::new(salt))
}

/// Ctrl+Up / Ctrl+Down on the focused prompt box: emphasis up or down by 0.1, as in A1111.
/// Runs before the box is drawn, so the box never sees the keys (it would move the cursor).
fn emphasis_keys(ui: &mut Ui, id: egui::Id, text: &mut String) {
    use egui::text::{CCursor, CCursorRange};
    use egui::text_edit::TextEditState;
    if !ui.memory(|m| m.has_focus(id)) {
        return;
    }
    let up = ui.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::ArrowUp));
    let down = ui.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::ArrowDown));
    if up == down {
        return;
    }
    let Some(mut edit_state) = TextEditState::load(ui.ctx(), id) else {
        return;
    };
    let Some(range) = edit_state.cursor.char_range() else {
        return;
    };
    let (a, b) = (range.primary.index.0, range.secondary.index.0);
    if let Some(edit) = crate::gui::prompt_weight::adjust(text, a.min(b)..a.max(b), up) {
        *text = edit.text;
        edit_state.cursor.set_char_range(Some(CCursorRange::two(
            CCursor::new(edit.selection.start),
            CCursor::new(edit.selection.end),
        )));
        edit_state.store(ui.ctx(), id);
    }
}

fn prompts(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    let label = ui
        .horizontal(|ui| {
            let label = ui.label(RichText::new(t!("prompt-label")).strong());
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                super::loras::toggle(ui, state, actions)
            });
            label
        })
        .inner;
    emphasis_keys(ui, text_edit_id(ui, "prompt"), &mut state.settings.params.prompt);
    let prompt = egui::TextEdit::multiline(&mut state.settings.params.prompt)
        .hint_text(t!("prompt-hint"))
        .desired_rows(4)
        .desired_width(f32::INFINITY)
        .id_salt("prompt");
    let response = ui.add(prompt).labelled_by(label.id);
    // Keyboard focus starts in the prompt box, once per run of the app.
    let focused_once = response.id.with("focused_once");
    if ui.memory(|m| m.focused().is_none())
        && !ui
            .ctx()
            .memory(|m| m.data.get_temp::<bool>(focused_once).unwrap_or(false))
    {
        response.request_focus();
        ui.ctx().memory_mut(|m| m.data.insert_temp(focused_once, true));
    }
    let syntax = state.settings.params.prompt_syntax;
    let counted = state.token_counters.prompt.count(
        state.tokenizer.as_ref(),
        &state.settings.params.prompt,
        syntax,
        &state.models.embeddings,
    );
    counter(ui, counted, syntax);

    let label = ui.label(RichText::new(t!("negative-prompt-label")).strong());
    emphasis_keys(
        ui,
        text_edit_id(ui, "negative_prompt"),
        &mut state.settings.params.negative_prompt,
    );
    let negative = egui::TextEdit::multiline(&mut state.settings.params.negative_prompt)
        .hint_text(t!("negative-prompt-hint"))
        .desired_rows(2)
        .desired_width(f32::INFINITY)
        .id_salt("negative_prompt");
    ui.add(negative).labelled_by(label.id);
    let counted = state.token_counters.negative.count(
        state.tokenizer.as_ref(),
        &state.settings.params.negative_prompt,
        syntax,
        &state.models.embeddings,
    );
    counter(ui, counted, syntax);
}

/// "82/150 tokens" as A1111 counts (the prompt takes two 75-token chunks), or the plain
/// count with a warning once CLIP's window cuts it.
fn counter(ui: &mut Ui, counted: Option<&Counted>, syntax: PromptSyntax) {
    let warn = ui.visuals().warn_fg_color;
    match counted {
        None => {}
        Some(Counted::Fits(c)) => {
            let label = ui.label(
                RichText::new(t!("token-count", used = c.tokens, limit = c.limit))
                    .weak()
                    .small(),
            );
            if syntax == PromptSyntax::A1111 {
                label.on_hover_text(t!("token-count-chunks-tip", chunks = c.chunks()));
            }
        }
        Some(Counted::Cut(c)) => {
            ui.label(
                RichText::new(t!("token-count-over", used = c.tokens, limit = c.limit))
                    .color(warn)
                    .small(),
            );
        }
        Some(Counted::Invalid(reason)) => {
            ui.label(RichText::new(reason.as_str()).color(warn).small());
        }
    }
}

fn settings_grid(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    let p = &mut state.settings.params;
    egui::Grid::new("settings_grid")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            let l = ui.label(t!("sampler-label"));
            egui::ComboBox::from_id_salt("sampler")
                .selected_text(sampler_label(p.sampler))
                .show_ui(ui, |ui| {
                    for kind in SamplerKind::ALL {
                        ui.selectable_value(&mut p.sampler, kind, sampler_label(kind));
                    }
                })
                .response
                .labelled_by(l.id);
            ui.end_row();

            let l = ui.label(t!("steps-label"));
            ui.add(egui::DragValue::new(&mut p.steps).range(1..=150))
                .labelled_by(l.id);
            ui.end_row();

            let l = ui.label(t!("guidance-label"));
            ui.add(
                egui::DragValue::new(&mut p.guidance)
                    .range(0.0..=30.0)
                    .speed(0.1)
                    .max_decimals(2),
            )
            .labelled_by(l.id)
            .on_hover_text(t!("guidance-tip"));
            ui.end_row();

            ui.label(t!("size-label"));
            ui.horizontal(|ui| {
                let lw = ui.label(t!("width-short"));
                size_value(ui, &mut p.width).labelled_by(lw.id);
                let lh = ui.label(t!("height-short"));
                size_value(ui, &mut p.height).labelled_by(lh.id);
                if ui.button(t!("swap")).on_hover_text(t!("swap-tip")).clicked() {
                    std::mem::swap(&mut p.width, &mut p.height);
                }
            });
            ui.end_row();

            let preset_label = ui.label(t!("preset-label"));
            egui::ComboBox::from_id_salt("size_presets")
                .selected_text(
                    SIZE_PRESETS
                        .iter()
                        .find(|(w, h)| *w == p.width && *h == p.height)
                        .map(|(w, h)| preset_name(*w, *h))
                        .unwrap_or_else(|| t!("size-custom")),
                )
                .show_ui(ui, |ui| {
                    for (w, h) in SIZE_PRESETS {
                        if ui
                            .selectable_label(p.width == *w && p.height == *h, preset_name(*w, *h))
                            .clicked()
                        {
                            p.width = *w;
                            p.height = *h;
                        }
                    }
                })
                .response
                .labelled_by(preset_label.id);
            ui.end_row();

            let l = ui.label(t!("seed-label"));
            ui.horizontal(|ui| {
                if state.settings.seed_locked {
                    ui.add(egui::DragValue::new(&mut p.seed).range(0..=u32::MAX as u64))
                        .labelled_by(l.id);
                } else {
                    ui.label(RichText::new(t!("seed-random")).weak()).labelled_by(l.id);
                }
                let lock = if state.settings.seed_locked { "🔒" } else { "🎲" };
                let tip = if state.settings.seed_locked {
                    t!("seed-locked-tip")
                } else {
                    t!("seed-random-tip")
                };
                if ui
                    .selectable_label(state.settings.seed_locked, lock)
                    .on_hover_text(tip)
                    .clicked()
                {
                    state.settings.seed_locked = !state.settings.seed_locked;
                    if state.settings.seed_locked
                        && let Some(last) = state.last_seed
                    {
                        p.seed = last;
                    }
                }
                if let Some(last) = state.last_seed
                    && ui
                        .button("♻")
                        .on_hover_text(t!("seed-reuse-tip", seed = last.to_string()))
                        .clicked()
                {
                    p.seed = last;
                    state.settings.seed_locked = true;
                }
            });
            ui.end_row();

            let l = ui.label(t!("batch-label"));
            // Draft decode shares the batch row, so the buttons below do not move down.
            ui.horizontal(|ui| {
                ui.add(egui::DragValue::new(&mut p.batch_size).range(1..=16))
                    .labelled_by(l.id);
                let model = state.settings.model.as_deref();
                draft_decode(ui, &mut p.draft_decode, &state.models, model, actions);
            });
            ui.end_row();
        });
}

/// "Draft decode": the picture from the tiny autoencoder (TAESD) instead of the VAE. Usable
/// when one is installed for the chosen model's family; otherwise greyed (unless a restored
/// recipe has it on, so it can be turned off), with a button that downloads the right one.
fn draft_decode(
    ui: &mut Ui,
    draft: &mut bool,
    models: &crate::gui::models_state::ModelsState,
    model: Option<&std::path::Path>,
    actions: &mut Vec<Action>,
) {
    let installed = model.and_then(|m| models.taesd_for(m));
    let wanted = model
        .and_then(|m| models.find_local(m))
        .map(|m| crate::hub::TaesdSpace::of(m.base).catalog_id());
    let enabled = installed.is_some() || *draft;
    let check = egui::Checkbox::new(draft, t!("draft-decode-check"));
    let response = ui.add_enabled(enabled, check);
    match installed {
        Some(t) => {
            response.on_hover_text(t!("draft-decode-tip", taesd = t.name.as_str()));
        }
        None => {
            response.on_disabled_hover_text(t!("draft-decode-needs-taesd"));
        }
    }
    let downloading = wanted.is_some_and(|id| {
        let repo = models
            .preview_decoders
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.repo.as_str());
        repo.and_then(|r| models.download(r)).is_some_and(|d| d.is_active())
    });
    if let (None, Some(id), false) = (installed, wanted, downloading)
        && ui
            .small_button(t!("draft-decode-get", name = id))
            .on_hover_text(t!("draft-decode-get-tip"))
            .clicked()
    {
        actions.push(Action::Download(id.to_string()));
    }
    if downloading {
        ui.spinner();
    }
}

/// Settings that make pictures match other tools: how the prompt is read, the text encoder
/// layer, the noise source. Folded away until needed; the header says when one is not the
/// default, so an imported picture's unusual setting is not missed.
fn advanced(ui: &mut Ui, state: &mut AppState) {
    let p = &mut state.settings.params;
    let defaults = crate::recipe::Recipe::default();
    let changed =
        p.clip_skip != defaults.clip_skip || p.prompt_syntax != defaults.prompt_syntax || p.rng != defaults.rng;
    let heading = if changed {
        t!("advanced-heading-changed")
    } else {
        t!("advanced-heading")
    };
    egui::CollapsingHeader::new(heading)
        .id_salt("advanced_settings")
        .show(ui, |ui| {
            egui::Grid::new("advanced_grid")
                .num_columns(2)
                .spacing([8.0, 6.0])
                .show(ui, |ui| {
                    let l = ui.label(t!("prompt-syntax-label"));
                    egui::ComboBox::from_id_salt("prompt_syntax")
                        .selected_text(syntax_label(p.prompt_syntax))
                        .show_ui(ui, |ui| {
                            for syntax in PromptSyntax::ALL {
                                ui.selectable_value(&mut p.prompt_syntax, syntax, syntax_label(syntax));
                            }
                        })
                        .response
                        .labelled_by(l.id)
                        .on_hover_text(t!("prompt-syntax-tip"));
                    ui.end_row();

                    let l = ui.label(t!("clip-skip-label"));
                    ui.add(egui::DragValue::new(&mut p.clip_skip).range(1..=MAX_CLIP_SKIP))
                        .labelled_by(l.id)
                        .on_hover_text(t!("clip-skip-tip"));
                    ui.end_row();

                    let l = ui.label(t!("noise-label"));
                    egui::ComboBox::from_id_salt("noise_source")
                        .selected_text(noise_label(p.rng))
                        .show_ui(ui, |ui| {
                            for kind in NoiseKind::ALL {
                                ui.selectable_value(&mut p.rng, kind, noise_label(kind));
                            }
                        })
                        .response
                        .labelled_by(l.id)
                        .on_hover_text(t!("noise-tip"));
                    ui.end_row();
                });
        });
}

fn syntax_label(syntax: PromptSyntax) -> String {
    match syntax {
        PromptSyntax::A1111 => t!("prompt-syntax-a1111"),
        PromptSyntax::Plain => t!("prompt-syntax-plain"),
    }
}

fn noise_label(kind: NoiseKind) -> String {
    match kind {
        NoiseKind::Cpu => t!("noise-cpu"),
        NoiseKind::Gpu => t!("noise-gpu"),
        NoiseKind::Lantern => t!("noise-lantern"),
    }
}

/// A width/height field that only ever holds multiples of 8.
fn size_value(ui: &mut Ui, v: &mut u32) -> egui::Response {
    let r = ui.add(egui::DragValue::new(v).range(64..=2048).speed(8));
    if r.changed() || r.lost_focus() {
        *v = ((*v + 4) / 8 * 8).clamp(64, 2048);
    }
    r
}

fn buttons(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        let label = if state.is_busy() {
            t!("queue-button")
        } else {
            t!("generate-button")
        };
        let generate =
            egui::Button::new(RichText::new(format!("✨ {label}")).size(16.0)).min_size(egui::vec2(140.0, 32.0));
        if ui.add(generate).on_hover_text("Ctrl+Enter").clicked() {
            actions.push(Action::Generate);
        }
        if ui
            .add_enabled(
                state.running.is_some(),
                egui::Button::new(format!("⏹ {}", t!("cancel-button"))),
            )
            .on_hover_text("Esc")
            .clicked()
        {
            actions.push(Action::Cancel);
        }
    });
}

fn queue(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    if state.running.is_none() && state.queue.is_empty() {
        return;
    }
    ui.separator();
    ui.label(RichText::new(t!("queue-heading")).strong());
    if let Some(run) = &state.running {
        ui.label(format!("▶ {}", run.label));
    }
    for job in &state.queue {
        ui.horizontal(|ui| {
            if ui.small_button("✖").on_hover_text(t!("queue-remove-tip")).clicked() {
                actions.push(Action::RemoveQueued(job.id));
            }
            ui.label(&job.label);
        });
    }
}
