//! One module per part of the window. Each draws from [`AppState`](super::state::AppState)
//! and pushes [`Action`](super::state::Action)s; none holds model code.

pub mod about;
pub mod hires;
pub mod history;
pub mod image_view;
pub mod loras;
pub mod mask_painter;
pub mod models;
pub mod parameters;
pub mod start;
pub mod status;
pub mod welcome;
