//! Command-line subcommands (clap derive). `src/main.rs` owns the top-level enum.

pub mod history;
