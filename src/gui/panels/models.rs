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
use crate::t;

/// The entries of the model picker's drop-down: every model found on disk (incomplete ones
/// greyed, with what is missing on hover), folders the user opened that discovery did not
/// list (so a broken one can be retried), then the ways to get more.
pub fn picker_items(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    let chosen = state.settings.model.as_ref();
    let models = &state.models;
    for m in &models.local {
        let mut text = format!("{}  ·  {}", m.name, model_details(m));
        let chosen_vae = state.settings.choice_for(&m.path).vae;
        if models.needs_vae_choice(&m.path, chosen_vae.as_deref()) {
            text = format!("{text}  ·  {}", t!("model-needs-vae"));
        } else if let (None, Some(donor)) = (&chosen_vae, models.vae_donor(&m.path)) {
            text = format!("{text}  ·  VAE: {}", t!("vae-family", model = donor.name.as_str()));
        }
        if let Some(donor) = models.text_encoder_donor(&m.path) {
            text = format!("{text}  ·  {}", t!("text-encoder-family", model = donor.name.as_str()));
        }
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
            .on_hover_text(t!("model-not-recognised", path = path.display().to_string()))
            .clicked()
        {
            actions.push(Action::ChooseModel(path.clone()));
        }
    }
    if models.local.is_empty() && state.settings.user_models.is_empty() {
        ui.label(RichText::new(scan_summary(models)).weak());
    }
    ui.separator();
    if ui.button(t!("open-a-model-folder")).clicked() {
        actions.push(Action::OpenModelDialog);
    }
    if ui.button(t!("rescan")).clicked() {
        actions.push(Action::Rescan);
    }
    if ui.button(t!("manage-and-download-models")).clicked() {
        actions.push(Action::OpenModelManager);
    }
}

/// "Incomplete: unet/ is missing; …".
pub fn incomplete_reason(m: &LocalModel) -> String {
    match &m.status {
        ModelStatus::Complete => String::new(),
        ModelStatus::Incomplete(problems) => t!("model-incomplete", problems = problems.join("; ")),
    }
}

fn scan_summary(models: &ModelsState) -> String {
    match models.scan {
        ScanState::NotYet | ScanState::Running => t!("scan-running"),
        ScanState::Done if models.local.is_empty() => t!("scan-none"),
        ScanState::Done => t!("scan-found", count = models.local.len()),
    }
}

/// The model manager: local models, downloads, the catalog and any Hub repo.
pub fn manager_window(ctx: &egui::Context, state: &mut AppState, actions: &mut Vec<Action>) {
    let mut open = state.models.manager_open;
    egui::Window::new(t!("models"))
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
    ui.heading(t!("downloads"));
    for d in &models.downloads {
        download_card(ui, d, actions);
    }
    ui.separator();
}

fn local_section(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        ui.heading(t!("on-this-computer"));
        if state.models.scan == ScanState::Running {
            ui.spinner();
        }
        if ui.button(t!("rescan")).clicked() {
            actions.push(Action::Rescan);
        }
        if ui.button(t!("open-a-model-folder")).clicked() {
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
    ui.collapsing(t!("where-lantern-looked"), |ui| {
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
                t!("model-in-use")
            } else {
                t!("use-model", name = m.name.as_str())
            };
            if ui.add_enabled(!chosen, egui::Button::new(label)).clicked() {
                actions.push(Action::ChooseModel(m.path.clone()));
            }
            ui.label(RichText::new(&m.name).strong());
            ui.label(model_details(m));
        } else {
            ui.add_enabled(false, egui::Button::new(t!("use-model", name = m.name.as_str())))
                .on_disabled_hover_text(incomplete_reason(m));
            ui.label(RichText::new(&m.name).weak())
                .on_hover_text(incomplete_reason(m));
            ui.label(RichText::new(t!("model-details-incomplete", details = model_details(m))).weak())
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
        .button(t!("resume-download"))
        .on_hover_text(t!("fetches-only-what-is-missing-partial"))
        .clicked()
    {
        actions.push(Action::Download(repo_id.clone()));
    }
}

fn catalog_section(ui: &mut Ui, models: &ModelsState, actions: &mut Vec<Action>) {
    ui.heading(t!("download-a-known-model"));
    if let Some(problem) = &models.hub_problem {
        ui.label(RichText::new(format!("Downloads are unavailable: {problem}")).color(ui.visuals().warn_fg_color));
    }
    for (i, entry) in models.catalog.iter().enumerate() {
        catalog_card(ui, entry, i == 0, models, actions);
    }
    preview_decoders_section(ui, models, actions);
}

/// The tiny autoencoders (TAESD): which are installed and for which family, and the catalog's
/// to download. Not models to choose: previews and Draft decode take the one of their family.
fn preview_decoders_section(ui: &mut Ui, models: &ModelsState, actions: &mut Vec<Action>) {
    ui.separator();
    ui.heading(t!("preview-decoders-heading"));
    ui.label(RichText::new(t!("preview-decoders-note")).small().weak());
    for t in &models.taesds {
        ui.label(t!(
            "preview-decoder-installed",
            name = t.name.as_str(),
            family = space_label(t.space)
        ))
        .on_hover_text(t.path.display().to_string());
    }
    for entry in &models.preview_decoders {
        let installed = entry
            .preview_space()
            .is_some_and(|space| models.taesds.iter().any(|t| t.space == space));
        if installed && models.download(&entry.repo).is_none() {
            continue;
        }
        catalog_card(ui, entry, false, models, actions);
    }
}

fn space_label(space: crate::hub::TaesdSpace) -> String {
    match space {
        crate::hub::TaesdSpace::Sd => t!("preview-decoder-for-sd"),
        crate::hub::TaesdSpace::Sdxl => t!("preview-decoder-for-sdxl"),
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
                    let label = t!(
                        "catalog-download",
                        name = entry.name.as_str(),
                        size = entry.size().to_string()
                    );
                    let button = egui::Button::new(RichText::new(label).strong());
                    if ui.add_enabled(models.hub_problem.is_none(), button).clicked() {
                        actions.push(Action::Download(entry.id.clone()));
                    }
                    if suggested {
                        ui.label(RichText::new(t!("suggested-for-this-computer")).color(ui.visuals().hyperlink_color));
                    }
                });
                if let Some(d) = download {
                    download_card(ui, d, actions);
                }
            }
        }
        ui.label(catalog_description(entry));
        ui.label(
            RichText::new(t!(
                "catalog-license",
                license = entry.license.as_str(),
                repo = entry.repo.as_str()
            ))
            .weak(),
        );
    });
}

/// Progress of one download: total and current-file bars, speed and ETA, Cancel; the end state
/// with "Use" (finished) or "Resume" (failed, cancelled) otherwise.
pub fn download_card(ui: &mut Ui, d: &DownloadView, actions: &mut Vec<Action>) {
    match &d.phase {
        DownloadPhase::Connecting => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(t!("download-connecting", name = d.name.as_str()));
                cancel_button(ui, d, actions);
            });
        }
        DownloadPhase::Running => running(ui, d, actions),
        DownloadPhase::Finished { snapshot } => {
            ui.horizontal(|ui| {
                ui.label(RichText::new(t!(
                    "download-finished",
                    name = d.name.as_str(),
                    size = crate::format::ByteSize(d.total).to_string()
                )));
                if d.preview_decoder {
                    ui.label(RichText::new(t!("preview-decoder-ready")).weak());
                } else if ui.button(t!("use-model", name = d.name.as_str())).clicked() {
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
            ui.label(t!(
                "download-cancelled-at",
                name = d.name.as_str(),
                size = crate::format::ByteSize(d.done).to_string()
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
        ui.label(RichText::new(t!("downloading", name = d.name.as_str())).strong());
        if d.already > 0 {
            ui.label(
                RichText::new(t!(
                    "download-resumed",
                    size = crate::format::ByteSize(d.already).to_string()
                ))
                .weak(),
            );
        }
        cancel_button(ui, d, actions);
    });
    let total = format!("{:.0}% · {}", d.fraction() * 100.0, d.summary());
    ui.add(egui::ProgressBar::new(d.fraction()).text(total));
    if let Some(file) = &d.current_file {
        let text = t!(
            "download-file-progress",
            index = (d.files_done + 1).min(d.files),
            count = d.files,
            file = file.as_str(),
            done = crate::format::ByteSize(d.file_done).to_string(),
            size = crate::format::ByteSize(d.file_size).to_string()
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
        .button(t!("cancel"))
        .on_hover_text(t!("stops-now-a-later-download-continues"))
        .clicked()
    {
        actions.push(Action::CancelDownload(d.repo_id.clone()));
    }
}

fn stopped_buttons(ui: &mut Ui, d: &DownloadView, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        // Nothing fetched yet (e.g. offline): there is nothing to resume, only to retry.
        let label = if d.done > 0 {
            t!("download-resume", name = d.name.as_str())
        } else {
            t!("download-try-again")
        };
        if ui
            .button(label)
            .on_hover_text(t!("continues-from-the-partial-files-if"))
            .clicked()
        {
            actions.push(Action::Download(d.request.clone()));
        }
        if ui.button(t!("dismiss")).clicked() {
            actions.push(Action::DismissDownload(d.repo_id.clone()));
        }
    });
}

fn repo_field(ui: &mut Ui, models: &mut ModelsState, actions: &mut Vec<Action>) {
    ui.label(RichText::new(t!("any-diffusers-model-on-the-hugging")).strong());
    ui.horizontal(|ui| {
        let label = ui.label(t!("repo-id"));
        let response = ui
            .add(
                egui::TextEdit::singleline(&mut models.repo_input)
                    .hint_text(t!("org-name"))
                    .desired_width(280.0),
            )
            .labelled_by(label.id);
        let enter = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let go = ui.add_enabled(models.hub_problem.is_none(), egui::Button::new(t!("download-repo")));
        if (go.clicked() || enter) && !models.repo_input.trim().is_empty() {
            actions.push(Action::Download(models.repo_input.trim().to_owned()));
        }
    });
    ui.label(RichText::new(t!("download-repo-note")).small().weak());
}

/// A catalog model's description in the window's language (`catalog-<id>-description`), or
/// the catalog's own English one when the language has none.
fn catalog_description(entry: &CatalogEntry) -> String {
    let id = format!("catalog-{}-description", entry.id);
    let catalog = crate::gui::i18n::current();
    if catalog.has(&id) {
        catalog.format(&id, None)
    } else {
        entry.description.clone()
    }
}
