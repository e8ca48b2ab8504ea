//! LoRAs: low-rank weight changes people train for a style or a subject, applied to the
//! loaded model by merging them into its weights (`patch.rs`), read from files in any of the
//! common layouts (`file.rs`) and matched to the model's weights by name (`targets.rs`).
//! Which LoRAs a picture uses is written in its prompt (`text::extra_networks`).

pub mod file;
pub mod patch;
pub mod targets;

pub use self::patch::{Applied, LoraChoice, Patcher};
pub use self::targets::Part;
