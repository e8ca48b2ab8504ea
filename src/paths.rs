//! Where Lantern keeps its data: history, thumbnails, settings, outputs, downloaded models.
//!
//! One [`DataDir`] value owns the layout; nothing else joins these names. `LANTERN_DATA_DIR`
//! overrides the root (tests and scripts use it); otherwise the platform's data folder
//! (`~/.local/share/lantern` on Linux).

use std::path::{Path, PathBuf};

pub const DATA_DIR_ENV: &str = "LANTERN_DATA_DIR";

/// The root of all app data and the places inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// A data folder at `root` (tests use a temporary one).
    pub fn at(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// `LANTERN_DATA_DIR`, else the platform's data folder.
    pub fn from_env() -> DataDir {
        if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
            return DataDir::at(dir);
        }
        let root = directories::ProjectDirs::from("", "", "lantern")
            .map(|p| p.data_dir().to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".lantern"));
        DataDir::at(root)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Generated images, unless the user picked another folder in the settings.
    pub fn outputs(&self) -> PathBuf {
        self.root.join("outputs")
    }

    pub fn history_db(&self) -> PathBuf {
        self.root.join("history.sqlite3")
    }

    pub fn thumbnails(&self) -> PathBuf {
        self.root.join("thumbnails")
    }

    /// The window's settings (parameters, model, folders).
    pub fn settings_file(&self) -> PathBuf {
        self.root.join("settings.json")
    }

    /// Window size and position, kept by eframe.
    pub fn window_state(&self) -> PathBuf {
        self.root.join("window.ron")
    }

    /// Extra window languages: `<code>.ftl` Fluent catalogs dropped in by the user.
    pub fn locales(&self) -> PathBuf {
        self.root.join("locales")
    }

    /// Models downloaded or placed in Lantern's own folder.
    pub fn models(&self) -> PathBuf {
        self.root.join("models")
    }

    /// LoRA files placed in Lantern's own folder (beside `models/`).
    pub fn loras(&self) -> PathBuf {
        self.root.join("loras")
    }

    /// The pictures jobs started from (init images, masks), one PNG per content hash, so a
    /// history entry can give its whole job back.
    pub fn inputs(&self) -> PathBuf {
        self.root.join("inputs")
    }

    /// Textual-inversion embeddings placed in Lantern's own folder (beside `models/`).
    pub fn embeddings(&self) -> PathBuf {
        self.root.join("embeddings")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let d = DataDir::at("/data");
        assert_eq!(d.history_db(), Path::new("/data/history.sqlite3"));
        assert_eq!(d.outputs(), Path::new("/data/outputs"));
        assert_eq!(d.thumbnails(), Path::new("/data/thumbnails"));
        assert_eq!(d.settings_file(), Path::new("/data/settings.json"));
        assert_eq!(d.models(), Path::new("/data/models"));
    }
}
