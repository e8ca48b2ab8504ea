//! Where Lantern keeps its data: history, thumbnails, settings, outputs, downloaded models.
//!
//! `LANTERN_DATA_DIR` overrides everything (tests and scripts use it); otherwise the
//! platform's data folder (`~/.local/share/lantern` on Linux).

use std::path::PathBuf;

pub const DATA_DIR_ENV: &str = "LANTERN_DATA_DIR";

/// The root of all app data.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    directories::ProjectDirs::from("", "", "lantern")
        .map(|p| p.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".lantern"))
}

/// Generated images, unless the user picked another folder in the settings.
pub fn outputs_dir() -> PathBuf {
    data_dir().join("outputs")
}

pub fn history_db() -> PathBuf {
    data_dir().join("history.sqlite3")
}

pub fn thumbnails_dir() -> PathBuf {
    data_dir().join("thumbnails")
}

pub fn settings_file() -> PathBuf {
    data_dir().join("settings.json")
}

/// Models downloaded by Lantern itself when no Hugging Face cache is wanted.
pub fn models_dir() -> PathBuf {
    data_dir().join("models")
}
