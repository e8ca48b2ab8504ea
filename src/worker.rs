//! The background thread that owns the loaded model: jobs in, events out. The window never
//! waits on it; it sends jobs and repaints when events arrive.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::Error;
use crate::history::History;
use crate::model::{LoadOptions, LoadStage, LoadedModel, PipelineKind};
use crate::output::RgbImage;
use crate::pipeline::{self, Event, Generated, Request};

/// Work for the worker.
pub enum Job {
    /// Load (or switch to) a model ahead of the first generation.
    Load { model: PathBuf, options: LoadOptions },
    /// Generate with `model` (loaded first if it is not the current one).
    Generate(GenerateJob),
}

#[derive(Clone)]
pub struct GenerateJob {
    pub id: u64,
    pub model: PathBuf,
    pub options: LoadOptions,
    pub request: Request,
    /// Where finished images are saved.
    pub output_dir: PathBuf,
    /// The history database each image is recorded in, if any.
    pub history_db: Option<PathBuf>,
}

/// What the loaded model is, for the window to show.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub name: String,
    pub hash: String,
    pub kind: PipelineKind,
    pub native_size: (u32, u32),
}

/// Everything the worker reports.
#[derive(Debug)]
pub enum WorkerEvent {
    Loading {
        model: PathBuf,
        stage: LoadStage,
    },
    Loaded(ModelInfo),
    LoadFailed {
        model: PathBuf,
        message: String,
    },
    Started {
        id: u64,
    },
    Progress {
        id: u64,
        image: u32,
        batch: u32,
        step: usize,
        total: usize,
        elapsed: Duration,
        eta: Duration,
    },
    Preview {
        id: u64,
        image: u32,
        preview: RgbImage,
    },
    Decoding {
        id: u64,
        image: u32,
    },
    Warning {
        id: u64,
        message: String,
    },
    /// Something the user should know that is not about one job (e.g. a rebuilt history).
    Notice(String),
    /// An image was recorded in the history with this id.
    Recorded {
        path: PathBuf,
        entry_id: i64,
    },
    /// A finished image, already saved at `path` (or with the reason it could not be).
    Image {
        id: u64,
        generated: Box<Generated>,
        saved: Result<PathBuf, String>,
    },
    Finished {
        id: u64,
        outcome: Outcome,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    Cancelled,
    Failed(String),
}

/// A handle to the worker thread.
pub struct Worker {
    jobs: Sender<Job>,
    events: Receiver<WorkerEvent>,
    cancel: Arc<AtomicBool>,
    _thread: JoinHandle<()>,
}

impl Worker {
    /// Starts the thread. `wake` is called after every event (the GUI passes a repaint request).
    pub fn spawn(wake: impl Fn() + Send + 'static) -> Worker {
        let (jobs_tx, jobs_rx) = channel::<Job>();
        let (events_tx, events_rx) = channel::<WorkerEvent>();
        let cancel = Arc::new(AtomicBool::new(false));
        let thread_cancel = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("lantern-worker".into())
            .spawn(move || {
                let mut state = WorkerState {
                    model: None,
                    history: None,
                    cancel: thread_cancel,
                    emit: Box::new(move |e| {
                        let _ = events_tx.send(e);
                        wake();
                    }),
                };
                while let Ok(job) = jobs_rx.recv() {
                    state.run(job);
                }
            })
            .expect("spawning the worker thread");
        Worker {
            jobs: jobs_tx,
            events: events_rx,
            cancel,
            _thread: thread,
        }
    }

    pub fn submit(&self, job: Job) {
        if let Job::Generate(_) = &job {
            self.cancel.store(false, Ordering::SeqCst);
        }
        let _ = self.jobs.send(job);
    }

    /// Asks the running job to stop at its next step.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    pub fn try_recv(&self) -> Option<WorkerEvent> {
        self.events.try_recv().ok()
    }

    /// Blocks for the next event (tests and scripts).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<WorkerEvent> {
        self.events.recv_timeout(timeout).ok()
    }
}

struct WorkerState {
    model: Option<(PathBuf, LoadOptions, LoadedModel)>,
    /// The open history database (kept open across jobs) and its path.
    history: Option<(PathBuf, History)>,
    cancel: Arc<AtomicBool>,
    emit: Box<dyn Fn(WorkerEvent) + Send>,
}

impl WorkerState {
    fn run(&mut self, job: Job) {
        match job {
            Job::Load { model, options } => {
                let _ = self.ensure_model(&model, &options);
            }
            Job::Generate(job) => {
                let id = job.id;
                (self.emit)(WorkerEvent::Started { id });
                let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| self.generate(&job))) {
                    Ok(outcome) => outcome,
                    Err(panic) => Outcome::Failed(format!("internal error: {}", panic_message(&panic))),
                };
                (self.emit)(WorkerEvent::Finished { id, outcome });
            }
        }
    }

    /// Loads `path` unless it is already the current model. A failed load leaves no model.
    fn ensure_model(&mut self, path: &PathBuf, options: &LoadOptions) -> Result<(), String> {
        if let Some((p, o, _)) = &self.model
            && p == path
            && o.dtype == options.dtype
            && o.device.same_device(&options.device)
        {
            return Ok(());
        }
        self.model = None;
        let emit = &self.emit;
        let loaded = std::panic::catch_unwind(AssertUnwindSafe(|| {
            LoadedModel::load(path, options.clone(), &mut |stage| {
                emit(WorkerEvent::Loading {
                    model: path.clone(),
                    stage,
                })
            })
        }));
        match loaded {
            Ok(Ok(model)) => {
                let info = ModelInfo {
                    path: path.clone(),
                    name: model.name(),
                    hash: model.hash.clone(),
                    kind: model.kind(),
                    native_size: model.native_size(),
                };
                self.model = Some((path.clone(), options.clone(), model));
                (self.emit)(WorkerEvent::Loaded(info));
                Ok(())
            }
            Ok(Err(e)) => {
                let message = e.to_string();
                (self.emit)(WorkerEvent::LoadFailed {
                    model: path.clone(),
                    message: message.clone(),
                });
                Err(message)
            }
            Err(panic) => {
                let message = format!("internal error while loading: {}", panic_message(&panic));
                (self.emit)(WorkerEvent::LoadFailed {
                    model: path.clone(),
                    message: message.clone(),
                });
                Err(message)
            }
        }
    }

    fn generate(&mut self, job: &GenerateJob) -> Outcome {
        if let Err(message) = self.ensure_model(&job.model, &job.options) {
            return Outcome::Failed(message);
        }
        let Some((_, _, model)) = &self.model else {
            return Outcome::Failed("no model loaded".into());
        };
        let id = job.id;
        let emit = &self.emit;
        let history = &mut self.history;
        let result = pipeline::generate(model, &job.request, &self.cancel, &mut |event| match event {
            Event::EncodingPrompt => {}
            Event::PromptTruncated { used, total } => emit(WorkerEvent::Warning {
                id,
                message: format!("The prompt has {total} tokens; only the first {used} are used."),
            }),
            Event::Step {
                image,
                batch,
                step,
                total,
                elapsed,
                eta,
            } => emit(WorkerEvent::Progress {
                id,
                image,
                batch,
                step,
                total,
                elapsed,
                eta,
            }),
            Event::Preview { image, preview } => emit(WorkerEvent::Preview { id, image, preview }),
            Event::Decoding { image } => emit(WorkerEvent::Decoding { id, image }),
            Event::ImageReady(generated) => {
                let saved = crate::output::save_png(&job.output_dir, &generated.image, &generated.params, None)
                    .map_err(|e| e.to_string());
                if let (Ok(path), Some(db)) = (&saved, &job.history_db) {
                    match record(history, db, &job.output_dir, &generated, path) {
                        Ok((entry_id, notice)) => {
                            if let Some(notice) = notice {
                                emit(WorkerEvent::Notice(notice));
                            }
                            emit(WorkerEvent::Recorded {
                                path: path.clone(),
                                entry_id,
                            });
                        }
                        Err(e) => emit(WorkerEvent::Warning {
                            id,
                            message: format!("Saved, but not recorded in the history: {e}"),
                        }),
                    }
                }
                emit(WorkerEvent::Image { id, generated, saved });
            }
        });
        match result {
            Ok(_) => Outcome::Done,
            Err(Error::Cancelled) => Outcome::Cancelled,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

/// Records one image, opening (and if need be recovering) the history the first time.
fn record(
    history: &mut Option<(PathBuf, History)>,
    db: &Path,
    outputs: &Path,
    generated: &Generated,
    path: &Path,
) -> crate::error::Result<(i64, Option<String>)> {
    let mut notice = None;
    if history.as_ref().is_none_or(|(p, _)| p != db) {
        let opened = History::open_or_recover(db, outputs)?;
        notice = opened.notice.map(|n| n.to_string());
        *history = Some((db.to_path_buf(), opened.history));
    }
    let (_, store) = history.as_ref().expect("opened above");
    let entry_id = crate::history::record_in(store, &generated.params, path, generated.duration)?;
    Ok((entry_id, notice))
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
