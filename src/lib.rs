//! Lantern: local text-to-image with Stable Diffusion in candle.
//!
//! Data flows one way: GUI or CLI → [`pipeline::Request`] → [`worker`] thread → pipeline
//! (tokenizer → text encoder → scheduler loop over the UNet → VAE decode) → image and
//! metadata → [`output`] (PNG) → [`history`] store.

pub mod cli;
pub mod error;
pub mod history;
pub mod output;
pub mod paths;
pub mod schedulers;
pub mod text;

pub use error::{Error, Result};
