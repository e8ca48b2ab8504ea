//! The window under test, shared by every GUI test (`tests/gui*.rs`, and the history view's
//! unit test, which includes this file by path): Lantern on a data folder of the test's own,
//! built the way `lantern` builds it, and frames stepped until the background threads are done.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use lantern::gui::models_state::ModelsEnv;
use lantern::gui::{AppOptions, LanternApp};

/// A file dropped on the window from the file manager (`RawInput::dropped_files`).
#[derive(Debug)]
pub struct DroppedPath(pub PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// How long [`wait_for`] waits: model loads and generations on a loaded machine included.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// How a test window is built; [`window`] starts one, [`TestWindow::build`] opens it.
pub struct TestWindow {
    data_dir: PathBuf,
    model: Option<PathBuf>,
    env: ModelsEnv,
    size: Option<egui::Vec2>,
    allow_missing_glyphs: bool,
    accessibility_check: bool,
}

/// A window whose settings, outputs and history live in `data_dir` (a temporary folder, so
/// nothing leaks between tests or from the user's own data). It looks for models only in an
/// empty Hugging Face cache inside it, with a Hub where nothing answers, unless
/// [`TestWindow::models_env`] says otherwise. egui_kittest's checks stay on: no missing glyph,
/// every widget named.
pub fn window(data_dir: &Path) -> TestWindow {
    TestWindow {
        data_dir: data_dir.to_path_buf(),
        model: None,
        env: ModelsEnv::isolated(&data_dir.join("hf-cache"), "http://127.0.0.1:9"),
        size: None,
        allow_missing_glyphs: false,
        accessibility_check: true,
    }
}

impl TestWindow {
    /// Opened with this model chosen (`lantern --model DIR`).
    pub fn model(mut self, model: impl Into<Option<PathBuf>>) -> Self {
        self.model = model.into();
        self
    }

    /// Where it looks for and downloads models.
    pub fn models_env(mut self, env: ModelsEnv) -> Self {
        self.env = env;
        self
    }

    pub fn size(mut self, width: f32, height: f32) -> Self {
        self.size = Some(egui::vec2(width, height));
        self
    }

    pub fn allow_missing_glyphs(mut self) -> Self {
        self.allow_missing_glyphs = true;
        self
    }

    pub fn without_accessibility_check(mut self) -> Self {
        self.accessibility_check = false;
        self
    }

    pub fn build(self) -> Harness<'static, LanternApp> {
        let mut builder = Harness::builder()
            // `Harness::run` would give up while a worker thread is busy; tests step instead.
            .with_max_steps(100_000)
            .with_accessibility_check(self.accessibility_check);
        if let Some(size) = self.size {
            builder = builder.with_size(size);
        }
        if self.allow_missing_glyphs {
            builder = builder.allow_missing_glyphs();
        }
        let options = AppOptions {
            model: self.model,
            data_dir: self.data_dir,
        };
        let env = self.env;
        builder.build_eframe(move |cc| LanternApp::with_models_env(&cc.egui_ctx, options, env))
    }
}

/// Steps frames, with short sleeps so the background threads progress, until `done` holds;
/// then draws twice more with the new state (a new window or panel takes a frame to measure
/// itself before it shows). Fails after `limit`, saying what the window was doing.
pub fn step_until(h: &mut Harness<'_, LanternApp>, limit: Duration, what: &str, done: impl Fn(&LanternApp) -> bool) {
    let start = Instant::now();
    loop {
        h.step();
        if done(h.state()) {
            break;
        }
        if start.elapsed() > limit {
            let a = h.state();
            panic!(
                "timed out after {limit:?} waiting for {what}; status {:?}, busy {}, model {:?}, history total {:?}",
                a.state.status.as_ref().map(|s| &s.text),
                a.state.is_busy(),
                a.state.model,
                a.state.history.total
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
    h.step();
}

/// [`step_until`] with the usual [`PATIENCE`].
pub fn wait_for(h: &mut Harness<'_, LanternApp>, what: &str, done: impl Fn(&LanternApp) -> bool) {
    step_until(h, PATIENCE, what, done);
}
