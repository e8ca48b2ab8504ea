//! One-shot background work for the window, in one place: [`Tasks::spawn`] runs a closure on a
//! named thread, sends its result over a channel and wakes the window, which takes it with
//! [`Tasks::try_recv`] on its next frame. A panic in the closure becomes a result too (the
//! caller says which), so the window never waits forever on work that died.
//!
//! The long-lived loops (the history service, the thumbnail loader) keep their own threads and
//! guard each piece of work with [`catch`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};

/// Where the results of one kind of background task arrive (`T` is the message type).
pub struct Tasks<T> {
    sender: TaskSender<T>,
    rx: Receiver<T>,
}

/// Sends a message to the window and wakes it: for a task that reports more than once.
pub struct TaskSender<T> {
    tx: Sender<T>,
    ctx: egui::Context,
}

impl<T> Clone for TaskSender<T> {
    fn clone(&self) -> Self {
        TaskSender {
            tx: self.tx.clone(),
            ctx: self.ctx.clone(),
        }
    }
}

impl<T: Send + 'static> TaskSender<T> {
    /// Delivers `msg` (dropped if the window is gone) and asks for a repaint.
    pub fn send(&self, msg: T) {
        let _ = self.tx.send(msg);
        self.ctx.request_repaint();
    }
}

impl<T: Send + 'static> Tasks<T> {
    pub fn new(ctx: &egui::Context) -> Tasks<T> {
        let (tx, rx) = channel();
        Tasks {
            sender: TaskSender { tx, ctx: ctx.clone() },
            rx,
        }
    }

    /// For work that reports before it ends (sent the same way as results).
    pub fn sender(&self) -> TaskSender<T> {
        self.sender.clone()
    }

    /// Runs `work` on a thread named `lantern-<name>` and delivers what it returns. If it
    /// panics, `on_panic` is given the reason in words and its message is delivered instead;
    /// so is it when no thread can be started.
    pub fn spawn<W, P>(&self, name: &str, work: W, on_panic: P)
    where
        W: FnOnce() -> T + Send + 'static,
        P: FnOnce(String) -> T + Clone + Send + 'static,
    {
        let sender = self.sender();
        let task = name.to_owned();
        let if_unstarted = on_panic.clone();
        let started = std::thread::Builder::new()
            .name(format!("lantern-{name}"))
            .spawn(move || sender.send(catch(&task, work).unwrap_or_else(on_panic)));
        if let Err(e) = started {
            tracing::error!("cannot start a thread for {name}: {e}");
            self.sender.send(if_unstarted(format!("could not start {name}: {e}")));
        }
    }

    /// The next delivered message, if any (call until `None` each frame).
    pub fn try_recv(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Runs `work`; a panic comes back as "internal error in <name>: <what it said>" (and is
/// logged), so a background thread can report it instead of dying silently.
pub fn catch<R>(name: &str, work: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|panic| {
        let why = format!("internal error in {name}: {}", crate::worker::panic_message(&panic));
        tracing::error!("{why}");
        why
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_for<T: Send + 'static>(tasks: &Tasks<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(msg) = tasks.try_recv() {
                return msg;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no result arrived");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn results_and_panics_both_arrive() {
        let tasks: Tasks<Result<u32, String>> = Tasks::new(&egui::Context::default());
        tasks.spawn("sum", || Ok(2 + 2), Err);
        assert_eq!(wait_for(&tasks), Ok(4));
        tasks.spawn("crash", || panic!("boom"), Err);
        assert_eq!(wait_for(&tasks), Err("internal error in crash: boom".to_string()));
        assert!(tasks.try_recv().is_none());
    }

    #[test]
    fn a_task_can_report_before_it_ends() {
        let tasks: Tasks<u32> = Tasks::new(&egui::Context::default());
        let progress = tasks.sender();
        tasks.spawn(
            "count",
            move || {
                progress.send(1);
                progress.send(2);
                3
            },
            |_| 0,
        );
        assert_eq!([wait_for(&tasks), wait_for(&tasks), wait_for(&tasks)], [1, 2, 3]);
    }

    #[test]
    fn catch_passes_results_through_and_names_panics() {
        assert_eq!(catch("x", || 7), Ok(7));
        let why = catch("thumbnail", || -> u8 { panic!("{}", String::from("bad png")) }).unwrap_err();
        assert_eq!(why, "internal error in thumbnail: bad png");
    }
}
