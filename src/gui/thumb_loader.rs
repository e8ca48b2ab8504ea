//! Makes and loads history thumbnails on background threads.
//!
//! The queue is a stack with a bound: what the user scrolled to last is made first, and when
//! they fling through thousands of entries the requests for rows long gone fall off the end
//! instead of keeping the threads busy. Thumbnails are cached on disk
//! ([`crate::history::thumbnail_in`]), so a second visit only decodes a small PNG.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};

use super::tasks::catch;

/// Longest side of a cached thumbnail in pixels (sharp at 1.5× on a 160-point cell).
pub const THUMB_SIDE: u32 = 256;

/// A finished (or failed) thumbnail.
pub struct ThumbResult {
    pub id: i64,
    pub image: Result<egui::ColorImage, String>,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<(i64, PathBuf)>,
    /// Ids being made right now (not queued again meanwhile).
    in_flight: HashSet<i64>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

/// A handle to the loader threads; dropping it stops them after their current thumbnail.
pub struct ThumbLoader {
    shared: Arc<Shared>,
    results: Receiver<ThumbResult>,
    capacity: usize,
}

impl ThumbLoader {
    /// Starts `threads` threads writing thumbnails under `cache_dir`; at most `capacity`
    /// requests wait at once. `wake` runs after each result (a repaint request).
    pub fn spawn(cache_dir: PathBuf, threads: usize, capacity: usize, wake: impl Fn() + Send + Sync + 'static) -> Self {
        Self::start(cache_dir, threads.max(1), capacity, wake)
    }

    /// [`ThumbLoader::spawn`] with exactly `threads` threads (tests use none, to watch the queue).
    fn start(cache_dir: PathBuf, threads: usize, capacity: usize, wake: impl Fn() + Send + Sync + 'static) -> Self {
        Self::start_with(cache_dir, threads, capacity, wake, load_thumbnail)
    }

    /// [`ThumbLoader::start`] making each thumbnail with `load` (tests pass one that panics).
    fn start_with(
        cache_dir: PathBuf,
        threads: usize,
        capacity: usize,
        wake: impl Fn() + Send + Sync + 'static,
        load: fn(&Path, &Path) -> Result<egui::ColorImage, String>,
    ) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
        });
        let (tx, results) = channel();
        let wake = Arc::new(wake);
        for n in 0..threads {
            let shared = shared.clone();
            let tx: Sender<ThumbResult> = tx.clone();
            let wake = wake.clone();
            let cache_dir = cache_dir.clone();
            let started = std::thread::Builder::new()
                .name(format!("lantern-thumbs-{n}"))
                .spawn(move || {
                    while let Some((id, path)) = next_job(&shared) {
                        // A panic (a PNG that trips the decoder) fails this thumbnail only.
                        let image = catch("a thumbnail", || load(&cache_dir, &path)).and_then(|r| r);
                        lock(&shared.queue).in_flight.remove(&id);
                        if tx.send(ThumbResult { id, image }).is_err() {
                            return;
                        }
                        wake();
                    }
                });
            if let Err(e) = started {
                // Fewer threads (or none: thumbnails stay blank) rather than a panic in the window.
                tracing::warn!("could not start a thumbnail thread: {e}");
                break;
            }
        }
        ThumbLoader {
            shared,
            results,
            capacity: capacity.max(1),
        }
    }

    /// Asks for thumbnails, the first of `items` most urgently. Ones already queued move to
    /// the front; ones being made are left alone; the oldest requests beyond the capacity
    /// are forgotten (they are asked for again if they come back into view).
    pub fn request(&self, items: &[(i64, PathBuf)]) {
        if items.is_empty() {
            return;
        }
        let mut q = lock(&self.shared.queue);
        for (id, path) in items.iter().rev() {
            if q.in_flight.contains(id) {
                continue;
            }
            q.items.retain(|(queued, _)| queued != id);
            q.items.push_front((*id, path.clone()));
        }
        q.items.truncate(self.capacity);
        drop(q);
        self.shared.ready.notify_all();
    }

    pub fn try_recv(&self) -> Option<ThumbResult> {
        self.results.try_recv().ok()
    }

    /// Requests waiting (not counting those being made).
    pub fn queued(&self) -> usize {
        lock(&self.shared.queue).items.len()
    }
}

impl Drop for ThumbLoader {
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.queue.lock() {
            q.closed = true;
            q.items.clear();
        }
        self.shared.ready.notify_all();
    }
}

/// The queue, even if a thread panicked while holding it (its data stays consistent: every
/// change is a single push, pop or removal).
fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn next_job(shared: &Shared) -> Option<(i64, PathBuf)> {
    let mut q = shared.queue.lock().ok()?;
    loop {
        if q.closed {
            return None;
        }
        if let Some((id, path)) = q.items.pop_front() {
            q.in_flight.insert(id);
            return Some((id, path));
        }
        q = shared.ready.wait(q).ok()?;
    }
}

/// The cached thumbnail of `path` (made first if need be), decoded for upload.
pub fn load_thumbnail(cache_dir: &Path, path: &Path) -> Result<egui::ColorImage, String> {
    if !path.is_file() {
        return Err("file missing".into());
    }
    let thumb = crate::history::thumbnail_in(cache_dir, path, THUMB_SIDE).map_err(|e| e.to_string())?;
    let img = crate::output::decode_png_file(&thumb).map_err(|e| e.to_string())?;
    Ok(egui::ColorImage::from_rgb(
        [img.width as usize, img.height as usize],
        &img.data,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn loader_without_threads(capacity: usize) -> ThumbLoader {
        ThumbLoader::start(PathBuf::from("/nonexistent"), 0, capacity, || {})
    }

    fn ids(l: &ThumbLoader) -> Vec<i64> {
        l.shared.queue.lock().unwrap().items.iter().map(|(i, _)| *i).collect()
    }

    #[test]
    fn newest_requests_first_and_bounded() {
        let l = loader_without_threads(4);
        let item = |i: i64| (i, PathBuf::from(format!("/x/{i}.png")));
        l.request(&[item(1), item(2)]);
        l.request(&[item(3), item(4)]);
        assert_eq!(ids(&l), [3, 4, 1, 2]);
        l.request(&[item(2)]);
        assert_eq!(ids(&l), [2, 3, 4, 1], "a repeated request moves to the front, once");
        l.request(&[item(5), item(6)]);
        assert_eq!(ids(&l), [5, 6, 2, 3], "the oldest requests fall off");
        l.shared.queue.lock().unwrap().in_flight.insert(7);
        l.request(&[item(7)]);
        assert_eq!(l.queued(), 4, "one being made is not queued again");
    }

    #[test]
    fn a_panicking_thumbnail_fails_alone_and_the_thread_goes_on() {
        let (wake_tx, wake_rx) = channel();
        let wake_tx = Mutex::new(wake_tx);
        // One thread, so the second thumbnail is made by the thread the first one panicked in.
        let l = ThumbLoader::start_with(
            PathBuf::from("/nonexistent"),
            1,
            16,
            move || {
                let _ = wake_tx.lock().unwrap().send(());
            },
            |_, path| {
                if path.ends_with("boom.png") {
                    panic!("decoder tripped");
                }
                Ok(egui::ColorImage::new([1, 1], vec![egui::Color32::RED]))
            },
        );
        l.request(&[(1, PathBuf::from("/x/boom.png")), (2, PathBuf::from("/x/fine.png"))]);
        let mut results = Vec::new();
        while results.len() < 2 {
            wake_rx.recv_timeout(Duration::from_secs(20)).expect("a result");
            results.extend(std::iter::from_fn(|| l.try_recv()));
        }
        results.sort_by_key(|r| r.id);
        let why = results[0].image.as_ref().unwrap_err();
        assert!(why.contains("a thumbnail") && why.contains("decoder tripped"), "{why}");
        assert_eq!(results[1].image.as_ref().unwrap().size, [1, 1]);
        assert!(l.shared.queue.lock().unwrap().in_flight.is_empty());
    }

    #[test]
    fn makes_thumbnails_and_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let img = crate::output::RgbImage::from_raw(64, 32, vec![200; 64 * 32 * 3]).unwrap();
        let png = dir.path().join("a.png");
        crate::output::save_png(dir.path(), &img, &Default::default(), Some(&png)).unwrap();
        let (wake_tx, wake_rx) = channel();
        let wake_tx = Mutex::new(wake_tx);
        let l = ThumbLoader::spawn(dir.path().join("thumbs"), 2, 16, move || {
            let _ = wake_tx.lock().unwrap().send(());
        });
        l.request(&[(1, png.clone()), (2, dir.path().join("gone.png"))]);
        let mut results = Vec::new();
        while results.len() < 2 {
            wake_rx.recv_timeout(Duration::from_secs(20)).expect("a result");
            results.extend(std::iter::from_fn(|| l.try_recv()));
        }
        results.sort_by_key(|r| r.id);
        let ok = results[0].image.as_ref().unwrap();
        assert_eq!(ok.size, [64, 32], "small images are not enlarged");
        assert_eq!(results[1].image.as_ref().unwrap_err(), "file missing");
        assert_eq!(
            std::fs::read_dir(dir.path().join("thumbs")).unwrap().count(),
            1,
            "cached on disk"
        );
    }
}
