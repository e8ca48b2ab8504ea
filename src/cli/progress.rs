//! A one-line progress bar on stderr, drawn only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

pub struct ProgressBar {
    enabled: bool,
    drawn: bool,
}

impl ProgressBar {
    pub fn new(quiet: bool) -> ProgressBar {
        ProgressBar {
            enabled: !quiet && std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    pub fn message(&mut self, text: &str) {
        if self.enabled {
            self.clear();
            eprint!("{text}");
            let _ = std::io::stderr().flush();
            self.drawn = true;
        }
    }

    pub fn step(&mut self, label: &str, step: usize, total: usize, elapsed: Duration, eta: Duration) {
        if !self.enabled {
            return;
        }
        const WIDTH: usize = 30;
        let filled = (step * WIDTH).checked_div(total).unwrap_or(0).min(WIDTH);
        let per_step = elapsed.as_secs_f64() / step.max(1) as f64;
        let rate = if per_step >= 1.0 {
            format!("{per_step:.2} s/it")
        } else {
            format!("{:.2} it/s", 1.0 / per_step.max(1e-9))
        };
        let line = format!(
            "{label} [{}{}] {step}/{total} {rate} ETA {}",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            crate::format::format_duration(eta)
        );
        self.message(&line);
    }

    pub fn clear(&mut self) {
        if self.enabled && self.drawn {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
            self.drawn = false;
        }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.clear();
    }
}
