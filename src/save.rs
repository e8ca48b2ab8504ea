//! The one way a finished picture is kept: a PNG carrying its recipe, written atomically, then
//! its history row. The worker (for the window) and `lantern generate` both go through
//! [`Saver`], so the two can never keep pictures differently.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::history::History;
use crate::pipeline::Generated;

/// Where the history lives, and the PNGs it is rebuilt from if the file is found damaged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryLocation {
    pub db: PathBuf,
    pub outputs: PathBuf,
}

/// What became of one picture.
#[derive(Debug)]
pub struct Saved {
    pub path: PathBuf,
    /// The history row's id, or why the picture is not recorded (the file is kept either
    /// way); `None` when no history is kept.
    pub recorded: Option<Result<i64>>,
    /// Said once, when opening the history had to rebuild it.
    pub notice: Option<String>,
}

/// Saves pictures into a folder and records them in a history, keeping the database open
/// between pictures and jobs.
pub struct Saver {
    output_dir: PathBuf,
    history_location: Option<HistoryLocation>,
    history: Option<(HistoryLocation, History)>,
}

impl Saver {
    /// Fresh file names go into `output_dir`; each picture is recorded at `history` if given.
    pub fn new(output_dir: PathBuf, history: Option<HistoryLocation>) -> Saver {
        Saver {
            output_dir,
            history_location: history,
            history: None,
        }
    }

    /// Points later pictures at another folder or history (the window's settings may change
    /// between jobs); an open history stays open while its location is the same.
    pub fn retarget(&mut self, output_dir: PathBuf, history: Option<HistoryLocation>) {
        self.output_dir = output_dir;
        self.history_location = history;
    }

    /// Writes the PNG (exactly at `explicit_path` when given, else a fresh name in the output
    /// folder) and records it. Only a failed write is an error.
    pub fn save(&mut self, generated: &Generated, explicit_path: Option<&Path>) -> Result<Saved> {
        let path = crate::output::save_png(&self.output_dir, &generated.image, &generated.params, explicit_path)?;
        let mut saved = Saved {
            path,
            recorded: None,
            notice: None,
        };
        if let Some(location) = self.history_location.clone() {
            saved.recorded = Some(self.record(&location, generated, &saved.path, &mut saved.notice));
        }
        Ok(saved)
    }

    fn record(
        &mut self,
        location: &HistoryLocation,
        generated: &Generated,
        path: &Path,
        notice: &mut Option<String>,
    ) -> Result<i64> {
        let store = self.open_history(location, notice)?;
        crate::history::record_in(store, &generated.params, path, generated.duration)
    }

    /// The history at the current location, opened (and if need be recovered) once.
    fn open_history(&mut self, location: &HistoryLocation, notice: &mut Option<String>) -> Result<&History> {
        if let Some((at, _)) = &self.history
            && at != location
        {
            self.history = None;
        }
        let (_, store) = match self.history.take() {
            Some(open) => self.history.insert(open),
            None => {
                let opened = History::open_or_recover(&location.db, &location.outputs)?;
                *notice = opened.notice.map(|n| n.to_string());
                self.history.insert((location.clone(), opened.history))
            }
        };
        Ok(store)
    }
}
