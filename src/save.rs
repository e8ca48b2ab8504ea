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
    /// Where the pictures jobs started from are kept ([`crate::source::InputStore`]).
    pub inputs: PathBuf,
}

impl HistoryLocation {
    /// The data folder's history, with pictures saved into `outputs`.
    pub fn in_data_dir(data: &crate::paths::DataDir, outputs: PathBuf) -> HistoryLocation {
        HistoryLocation {
            db: data.history_db(),
            outputs,
            inputs: data.inputs(),
        }
    }
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
        // The start pictures first: a row that names them can always give them back.
        if let Some(source) = &generated.source {
            let inputs = crate::source::InputStore::new(&location.inputs);
            inputs.put(&source.image)?;
            if let Some(mask) = &source.mask {
                inputs.put_mask(mask)?;
            }
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::output::RgbImage;
    use crate::recipe::Recipe;

    fn generated(seed: u64) -> Generated {
        Generated {
            image: RgbImage {
                width: 8,
                height: 8,
                data: vec![seed as u8; 8 * 8 * 3],
            },
            params: Recipe {
                prompt: format!("fox {seed}"),
                seed,
                ..Recipe::default()
            },
            duration: Duration::from_millis(5),
            source: None,
        }
    }

    fn location(dir: &Path) -> HistoryLocation {
        HistoryLocation {
            db: dir.join("history.sqlite3"),
            outputs: dir.join("outputs"),
            inputs: dir.join("inputs"),
        }
    }

    #[test]
    fn saves_the_png_then_records_its_recipe() {
        let dir = tempfile::tempdir().unwrap();
        let mut saver = Saver::new(dir.path().join("outputs"), Some(location(dir.path())));
        let first = saver.save(&generated(1), None).unwrap();
        let second = saver.save(&generated(2), None).unwrap();
        assert!(first.path.is_file() && second.path.is_file());
        assert_ne!(first.path, second.path);
        let (Some(Ok(a)), Some(Ok(b))) = (first.recorded, second.recorded) else {
            panic!("both recorded");
        };
        assert_ne!(a, b);
        assert!(first.notice.is_none());
        let history = History::open(&location(dir.path()).db).unwrap();
        let entry = history.get(b).unwrap().unwrap();
        assert_eq!(entry.params, generated(2).params);
        assert_eq!(entry.duration_ms, Some(5));
    }

    #[test]
    fn a_job_started_from_a_picture_keeps_it_beside_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut saver = Saver::new(dir.path().join("outputs"), Some(location(dir.path())));
        let start = RgbImage::from_raw(2, 1, vec![9, 8, 7, 6, 5, 4]).unwrap();
        let mask = crate::source::GrayImage {
            width: 2,
            height: 1,
            data: vec![0, 255],
        };
        let mut g = generated(7);
        g.params.init_image = Some(crate::source::store::content_hash(&start));
        g.params.mask = Some(crate::source::store::content_hash(&mask.to_rgb()));
        g.source = Some(std::sync::Arc::new(crate::source::SourceImages {
            image: start.clone(),
            mask: Some(mask.clone()),
        }));
        let saved = saver.save(&g, None).unwrap();
        let id = saved.recorded.unwrap().unwrap();
        let entry = History::open(&location(dir.path()).db)
            .unwrap()
            .get(id)
            .unwrap()
            .unwrap();
        let inputs = crate::source::InputStore::new(dir.path().join("inputs"));
        assert_eq!(inputs.get(entry.params.init_image.as_deref().unwrap()).unwrap(), start);
        assert_eq!(inputs.get_mask(entry.params.mask.as_deref().unwrap()).unwrap(), mask);
    }

    #[test]
    fn without_a_history_only_the_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut saver = Saver::new(dir.path().to_path_buf(), None);
        let saved = saver.save(&generated(3), None).unwrap();
        assert!(saved.path.is_file());
        assert!(saved.recorded.is_none());
        assert!(!location(dir.path()).db.exists());
    }

    #[test]
    fn a_history_that_cannot_open_keeps_the_picture() {
        let dir = tempfile::tempdir().unwrap();
        // The database's folder is a file: opening fails, the PNG must still be kept.
        std::fs::write(dir.path().join("blocked"), b"not a folder").unwrap();
        let broken = HistoryLocation {
            db: dir.path().join("blocked").join("history.sqlite3"),
            outputs: dir.path().join("outputs"),
            inputs: dir.path().join("inputs"),
        };
        let mut saver = Saver::new(dir.path().join("outputs"), Some(broken));
        let saved = saver.save(&generated(4), None).unwrap();
        assert!(saved.path.is_file());
        assert!(matches!(saved.recorded, Some(Err(_))));
        // Pointed at a working history, the next picture is recorded.
        saver.retarget(dir.path().join("outputs"), Some(location(dir.path())));
        assert!(matches!(saver.save(&generated(5), None).unwrap().recorded, Some(Ok(_))));
    }

    #[test]
    fn an_explicit_path_is_written_exactly_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut saver = Saver::new(dir.path().join("unused"), None);
        let dest = dir.path().join("mine.png");
        let saved = saver.save(&generated(6), Some(&dest)).unwrap();
        assert_eq!(saved.path, dest);
        let text = crate::output::read_parameters_file(&dest).unwrap().unwrap();
        assert!(text.starts_with("fox 6\n"), "{text}");
    }
}
