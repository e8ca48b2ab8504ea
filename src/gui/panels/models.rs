//! Models in the window: the model picker's entries, the model manager window, and the pieces
//! the first screen shares with it (catalog cards, download progress, local model rows). Like
//! every panel it only reads state and pushes [`Action`]s; scans and downloads run elsewhere.

use egui::{RichText, Ui};

use crate::error::Failure;
use crate::gui::models_state::{
    DownloadPhase, DownloadView, ModelsState, ScanState, download_failure_parts, model_details, source_label,
};
use crate::gui::state::{Action, AppState};
use crate::hub::{CatalogEntry, LocalModel, ModelStatus};

/// The entries of the model picker's drop-down: every model found on disk (incomplete ones
/// greyed, with what is missing on hover), folders the user opened that discovery did not
/// list (so a broken one can be retried), then the ways to get more.
pub fn picker_items(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    let chosen = state.settings.model.as_ref();
    let models = &state.models;
    for m in &models.local {
        let text = format!("{}  ·  {}", m.name, model_details(m));
        let selected = chosen == Some(&m.path);
        let response = ui.add_enabled(m.is_complete(), egui::Button::selectable(selected, text));
        let response = response
            .on_hover_text(format!("{}\n{}", source_label(&m.source), m.path.display()))
            .on_disabled_hover_text(incomplete_reason(m));
        if response.clicked() {
            actions.push(Action::ChooseModel(m.path.clone()));
        }
    }
    for path in &state.settings.user_models {
        if models.find_local(path).is_some() {
            continue;
        }
        let name = crate::model::display_name(path);
        if ui
            .selectable_label(chosen == Some(path), name)
            .on_hover_text(format!(
                "{} (not recognised as a model folder by the last scan)",
                path.display()
            ))
            .clicked()
        {
            actions.push(Action::ChooseModel(path.clone()));
        }
    }
    if models.local.is_empty() && state.settings.user_models.is_empty() {
        ui.label(RichText::new(scan_summary(models)).weak());
    }
    ui.separator();
    if ui.button("Open a model folder…").clicked() {
        actions.push(Action::OpenModelDialog);
    }
    if ui.button("Rescan").clicked() {
        actions.push(Action::Rescan);
    }
    if ui.button("Manage and download models…").clicked() {
        actions.push(Action::OpenModelManager);
    }
}

/// "Incomplete: unet/ is missing; …".
pub fn incomplete_reason(m: &LocalModel) -> String {
    match &m.status {
        ModelStatus::Complete => String::new(),
        ModelStatus::Incomplete(problems) => format!("Incomplete: {}", problems.join("; ")),
    }
}

fn scan_summary(models: &ModelsState) -> String {
    match models.scan {
        ScanState::NotYet | ScanState::Running => "Looking for models…".into(),
        ScanState::Done if models.local.is_empty() => "No models found on this computer.".into(),
        ScanState::Done => format!("{} models found.", models.local.len()),
    }
}

/// The model manager: local models, downloads, the catalog and any Hub repo.
pub fn manager_window(ctx: &egui::Context, state: &mut AppState, actions: &mut Vec<Action>) {
    let mut open = state.models.manager_open;
    egui::Window::new("Models")
        .open(&mut open)
        .default_width(620.0)
        .default_height(560.0)
        .vscroll(true)
        .show(ctx, |ui| {
            downloads_section(ui, &state.models, actions);
            local_section(ui, state, actions);
            ui.separator();
            repo_field(ui, &mut state.models, actions);
            ui.separator();
            catalog_section(ui, &state.models, actions);
        });
    state.models.manager_open = open;
}

fn downloads_section(ui: &mut Ui, models: &ModelsState, actions: &mut Vec<Action>) {
    if models.downloads.is_empty() {
        return;
    }
    ui.heading("Downloads");
    for d in &models.downloads {
        download_card(ui, d, actions);
    }
    ui.separator();
}

fn local_section(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        ui.heading("On this computer");
        if state.models.scan == ScanState::Running {
            ui.spinner();
        }
        if ui.button("Rescan").clicked() {
            actions.push(Action::Rescan);
        }
        if ui.button("Open a model folder…").clicked() {
            actions.push(Action::OpenModelDialog);
        }
    });
    if state.models.local.is_empty() {
        ui.label(RichText::new(scan_summary(&state.models)).weak());
        looked_in(ui, &state.models);
    }
    for m in &state.models.local {
        let chosen = state.settings.model.as_ref() == Some(&m.path);
        local_model_row(ui, m, chosen, &state.models, actions);
    }
}

/// Where a scan looked, so "nothing found" can be checked by the user.
pub fn looked_in(ui: &mut Ui, models: &ModelsState) {
    if models.scan != ScanState::Done || models.looked_in.is_empty() {
        return;
    }
    ui.collapsing("Where Lantern looked", |ui| {
        for p in &models.looked_in {
            ui.label(RichText::new(p.display().to_string()).monospace().small());
        }
    });
}

/// One model found on disk: name, details and source; "Use" when complete, else what is
/// missing (and "Resume download" for an interrupted Hub download).
pub fn local_model_row(ui: &mut Ui, m: &LocalModel, chosen: bool, models: &ModelsState, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        if m.is_complete() {
            let label = if chosen {
                "In use".to_string()
            } else {
                format!("Use {}", m.name)
            };
            if ui.add_enabled(!chosen, egui::Button::new(label)).clicked() {
                actions.push(Action::ChooseModel(m.path.clone()));
            }
            ui.label(RichText::new(&m.name).strong());
            ui.label(model_details(m));
        } else {
            ui.add_enabled(false, egui::Button::new(format!("Use {}", m.name)))
                .on_disabled_hover_text(incomplete_reason(m));
            ui.label(RichText::new(&m.name).weak())
                .on_hover_text(incomplete_reason(m));
            ui.label(RichText::new(format!("{} · incomplete", model_details(m))).weak())
                .on_hover_text(incomplete_reason(m));
            resume_button(ui, m, models, actions);
        }
    })
    .response
    .on_hover_text(m.path.display().to_string());
    ui.label(RichText::new(source_label(&m.source)).small().weak());
}

fn resume_button(ui: &mut Ui, m: &LocalModel, models: &ModelsState, actions: &mut Vec<Action>) {
    let crate::hub::ModelSource::HfCache { repo_id, .. } = &m.source else {
        return;
    };
    if models.download(repo_id).is_some_and(DownloadView::is_active) {
        return;
    }
    if ui
        .button("Resume download")
        .on_hover_text("Fetches only what is missing; partial files are continued")
        .clicked()
    {
        actions.push(Action::Download(repo_id.clone()));
    }
}

fn catalog_section(ui: &mut Ui, models: &ModelsState, actions: &mut Vec<Action>) {
    ui.heading("Download a known model");
    if let Some(problem) = &models.hub_problem {
        ui.label(RichText::new(format!("Downloads are unavailable: {problem}")).color(ui.visuals().warn_fg_color));
    }
    for (i, entry) in models.catalog.iter().enumerate() {
        catalog_card(ui, entry, i == 0, models, actions);
    }
}

/// A catalog model: the download button ("Download SD-Turbo — 2.6 GB"), license and a line of
/// description; its progress instead of the button while it downloads.
pub fn catalog_card(
    ui: &mut Ui,
    entry: &CatalogEntry,
    suggested: bool,
    models: &ModelsState,
    actions: &mut Vec<Action>,
) {
    ui.group(|ui| {
        ui.set_width(ui.available_width());
        let download = models.download(&entry.repo);
        match download {
            Some(d) if !d.can_resume() => download_card(ui, d, actions),
            _ => {
                ui.horizontal(|ui| {
                    let button = egui::Button::new(RichText::new(entry.download_label()).strong());
                    if ui.add_enabled(models.hub_problem.is_none(), button).clicked() {
                        actions.push(Action::Download(entry.id.clone()));
                    }
                    if suggested {
                        ui.label(RichText::new("Suggested for this computer").color(ui.visuals().hyperlink_color));
                    }
                });
                if let Some(d) = download {
                    download_card(ui, d, actions);
                }
            }
        }
        ui.label(&entry.description);
        ui.label(RichText::new(format!("License: {} · {}", entry.license, entry.repo)).weak());
    });
}

/// Progress of one download: total and current-file bars, speed and ETA, Cancel; the end state
/// with "Use" (finished) or "Resume" (failed, cancelled) otherwise.
pub fn download_card(ui: &mut Ui, d: &DownloadView, actions: &mut Vec<Action>) {
    match &d.phase {
        DownloadPhase::Connecting => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("{}: connecting to the model server…", d.name));
                cancel_button(ui, d, actions);
            });
        }
        DownloadPhase::Running => running(ui, d, actions),
        DownloadPhase::Finished { snapshot } => {
            ui.horizontal(|ui| {
                ui.label(RichText::new(format!(
                    "{} downloaded ({}).",
                    d.name,
                    crate::format::ByteSize(d.total)
                )));
                if ui.button(format!("Use {}", d.name)).clicked() {
                    actions.push(Action::ChooseModel(snapshot.clone()));
                }
            });
            if let Some(note) = d.size_only_note() {
                ui.label(RichText::new(note).small().weak());
            }
        }
        DownloadPhase::Failed(f) => {
            failure(ui, &d.name, f);
            stopped_buttons(ui, d, actions);
        }
        DownloadPhase::Cancelled => {
            ui.label(format!(
                "{}: cancelled at {}. What was fetched is kept.",
                d.name,
                crate::format::ByteSize(d.done)
            ));
            stopped_buttons(ui, d, actions);
        }
    }
}

/// The plain sentence in red, the technical detail (host, HTTP status, file) smaller below it.
fn failure(ui: &mut Ui, name: &str, failure: &Failure) {
    let (headline, detail) = download_failure_parts(failure);
    ui.label(RichText::new(format!("{name}: {headline}")).color(ui.visuals().error_fg_color));
    if let Some(detail) = detail {
        ui.label(RichText::new(detail).small().weak());
    }
}

fn running(ui: &mut Ui, d: &DownloadView, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        ui.label(RichText::new(format!("Downloading {}", d.name)).strong());
        if d.already > 0 {
            ui.label(
                RichText::new(format!(
                    "(resumed, {} were already here)",
                    crate::format::ByteSize(d.already)
                ))
                .weak(),
            );
        }
        cancel_button(ui, d, actions);
    });
    let total = format!("{:.0}% · {}", d.fraction() * 100.0, d.summary());
    ui.add(egui::ProgressBar::new(d.fraction()).text(total));
    if let Some(file) = &d.current_file {
        let text = format!(
            "file {}/{}: {file} · {} of {}",
            (d.files_done + 1).min(d.files),
            d.files,
            crate::format::ByteSize(d.file_done),
            crate::format::ByteSize(d.file_size)
        );
        ui.add(egui::ProgressBar::new(d.file_fraction()).desired_height(8.0))
            .on_hover_text(&text);
        ui.label(RichText::new(text).small().weak());
    }
    if let Some(note) = d.size_only_note() {
        ui.label(RichText::new(note).small().weak());
    }
}

fn cancel_button(ui: &mut Ui, d: &DownloadView, actions: &mut Vec<Action>) {
    if ui
        .button("Cancel")
        .on_hover_text("Stops now; a later download continues where this one stopped")
        .clicked()
    {
        actions.push(Action::CancelDownload(d.repo_id.clone()));
    }
}

fn stopped_buttons(ui: &mut Ui, d: &DownloadView, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        // Nothing fetched yet (e.g. offline): there is nothing to resume, only to retry.
        let label = if d.done > 0 {
            format!("Resume {}", d.name)
        } else {
            "Try again".to_string()
        };
        if ui
            .button(label)
            .on_hover_text("Continues from the partial files, if any")
            .clicked()
        {
            actions.push(Action::Download(d.request.clone()));
        }
        if ui.button("Dismiss").clicked() {
            actions.push(Action::DismissDownload(d.repo_id.clone()));
        }
    });
}

fn repo_field(ui: &mut Ui, models: &mut ModelsState, actions: &mut Vec<Action>) {
    ui.label(RichText::new("Any diffusers model on the Hugging Face Hub").strong());
    ui.horizontal(|ui| {
        let label = ui.label("Repo id");
        let response = ui
            .add(
                egui::TextEdit::singleline(&mut models.repo_input)
                    .hint_text("org/name")
                    .desired_width(280.0),
            )
            .labelled_by(label.id);
        let enter = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let go = ui.add_enabled(models.hub_problem.is_none(), egui::Button::new("Download repo"));
        if (go.clicked() || enter) && !models.repo_input.trim().is_empty() {
            actions.push(Action::Download(models.repo_input.trim().to_owned()));
        }
    });
    ui.label(
        RichText::new(
            "Only the diffusers components in safetensors form are fetched, into the shared Hugging Face cache.",
        )
        .small()
        .weak(),
    );
}
