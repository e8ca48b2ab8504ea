//! The background thread that owns the loaded model: jobs in, events out. The window never
//! waits on it; it sends jobs and repaints when events arrive.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Failure, Kind};
use crate::model::{LoadOptions, LoadStage, LoadedModel, PipelineKind};
use crate::output::RgbImage;
use crate::pipeline::{self, Event, Generated, Request};
use crate::save::{HistoryLocation, Saver};

/// Work for the worker.
pub enum Job {
    /// Load (or switch to) a model ahead of the first generation.
    Load { model: PathBuf, options: LoadOptions },
    /// Generate with `model` (loaded first if it is not the current one).
    Generate(Box<GenerateJob>),
}

#[derive(Clone)]
pub struct GenerateJob {
    pub id: u64,
    pub model: PathBuf,
    pub options: LoadOptions,
    pub request: Request,
    /// Where finished images are saved.
    pub output_dir: PathBuf,
    /// The history each image is recorded in, if any.
    pub history: Option<HistoryLocation>,
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
        failure: Failure,
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
        /// Picture pixels per preview pixel (see `pipeline::Event::Preview`).
        scale: u32,
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
        saved: Result<PathBuf, Failure>,
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
    /// The kind of failure and its one-line message.
    Failed(Failure),
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
                    saver: Saver::new(PathBuf::new(), None),
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
    /// Saves and records every image (keeps the history open across jobs).
    saver: Saver,
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
                    Err(panic) => Outcome::Failed(Failure::new(
                        Kind::Internal,
                        format!("internal error: {}", panic_message(&panic)),
                    )),
                };
                (self.emit)(WorkerEvent::Finished { id, outcome });
            }
        }
    }

    /// Loads `path` unless it is already the current model. A failed load leaves no model.
    fn ensure_model(&mut self, path: &PathBuf, options: &LoadOptions) -> Result<(), Failure> {
        if let Some((p, o, _)) = &self.model
            && p == path
            && o.same_load(options)
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
                let failure = Failure::from(e);
                (self.emit)(WorkerEvent::LoadFailed {
                    model: path.clone(),
                    failure: failure.clone(),
                });
                Err(failure)
            }
            Err(panic) => {
                let failure = Failure::new(
                    Kind::Internal,
                    format!("internal error while loading: {}", panic_message(&panic)),
                );
                (self.emit)(WorkerEvent::LoadFailed {
                    model: path.clone(),
                    failure: failure.clone(),
                });
                Err(failure)
            }
        }
    }

    fn generate(&mut self, job: &GenerateJob) -> Outcome {
        if let Err(failure) = self.ensure_model(&job.model, &job.options) {
            return Outcome::Failed(failure);
        }
        let Some((_, _, model)) = &self.model else {
            return Outcome::Failed(Failure::new(Kind::Internal, "no model loaded"));
        };
        let id = job.id;
        let emit = &self.emit;
        let saver = &mut self.saver;
        saver.retarget(job.output_dir.clone(), job.history.clone());
        let result = pipeline::generate(model, &job.request, &self.cancel, &mut |event| match event {
            Event::EncodingPrompt | Event::ApplyingLoras => {}
            Event::LoraPartlyApplied { name, skipped, total } => emit(WorkerEvent::Warning {
                id,
                message: format!(
                    "LoRA `{name}`: {skipped} of its {total} layers match nothing in this model and were skipped."
                ),
            }),
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
            Event::Preview { image, preview, scale } => emit(WorkerEvent::Preview {
                id,
                image,
                preview,
                scale,
            }),
            Event::Decoding { image } => emit(WorkerEvent::Decoding { id, image }),
            Event::ImageReady(generated) => {
                let saved = match saver.save(&generated, None) {
                    Ok(saved) => {
                        report_recorded(emit, id, &saved);
                        Ok(saved.path)
                    }
                    Err(e) => Err(Failure::from(&e)),
                };
                emit(WorkerEvent::Image { id, generated, saved });
            }
        });
        match result {
            Ok(_) => Outcome::Done,
            Err(Error::Cancelled) => Outcome::Cancelled,
            Err(e) => Outcome::Failed(Failure::from(e)),
        }
    }
}

/// Tells the window that a saved image is in the history (or why it is not).
fn report_recorded(emit: &dyn Fn(WorkerEvent), id: u64, saved: &crate::save::Saved) {
    if let Some(notice) = &saved.notice {
        emit(WorkerEvent::Notice(notice.clone()));
    }
    match &saved.recorded {
        Some(Ok(entry_id)) => emit(WorkerEvent::Recorded {
            path: saved.path.clone(),
            entry_id: *entry_id,
        }),
        Some(Err(e)) => emit(WorkerEvent::Warning {
            id,
            message: format!("Saved, but not recorded in the history: {e}"),
        }),
        None => {}
    }
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
