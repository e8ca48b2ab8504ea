//! Lantern: local text-to-image with Stable Diffusion in candle.
//!
//! Data flows one way: GUI or CLI → [`recipe::Recipe`] in a [`pipeline::Request`] → worker
//! thread → pipeline (tokenizer → text encoder → scheduler loop over the UNet → VAE decode) →
//! image and its recipe → [`save::Saver`] (PNG via [`output`], then the [`history`] row).
//! `ARCHITECTURE.md` is the map.

// Unit tests share the GUI tests' harness, which names this crate `lantern` as they do.
#[cfg(test)]
extern crate self as lantern;
#[cfg(test)]
#[path = "../tests/common/gui.rs"]
mod gui_test_harness;

pub mod alloc;
pub mod build_info;
pub mod cli;
pub mod device;
pub mod error;
pub mod format;
pub mod gui;
pub mod history;
pub mod hub;
pub mod logging;
pub mod model;
pub mod output;
pub mod paths;
pub mod pipeline;
pub mod recipe;
pub mod save;
pub mod schedulers;
pub mod source;
pub mod text;
pub mod threads;
pub mod worker;

pub use error::{Error, Result};
