//! Writing images: PNG with AUTOMATIC1111-compatible metadata, file naming, atomic writes.

pub mod atomic;
pub mod image;
pub mod naming;
pub mod parameters;
pub mod png;

use std::path::{Path, PathBuf};

pub use image::RgbImage;
pub use parameters::{ParsedParameters, format_parameters, parse_parameters};
pub use png::{decode_png, decode_png_file, read_parameters, read_parameters_file};

use crate::error::{Error, Result};
use crate::recipe::Recipe;
use atomic::Existing;

/// Saves `image` as a PNG carrying `params` as A1111 `parameters` text; returns where.
///
/// * `explicit_path` (the user's `--output` or "Save as…"): written exactly there, replacing
///   an existing file. Its folder must exist: a typo in a path the user typed should be an
///   error, not a new folder chain somewhere.
/// * otherwise: a fresh name in `dir` (`20261128-142501-<seed>-<slug>.png`, with `-1`, `-2`, …
///   appended rather than overwriting anything); `dir` is created if needed (it is the
///   app's own outputs folder or one the user chose in the settings).
///
/// Either way the file appears whole or not at all.
pub fn save_png(dir: &Path, image: &RgbImage, params: &Recipe, explicit_path: Option<&Path>) -> Result<PathBuf> {
    let bytes = png::encode_png(image, Some(&format_parameters(params)))?;
    if let Some(path) = explicit_path {
        let folder = atomic::parent_dir(path);
        if !folder.is_dir() {
            return Err(Error::OutputFolderMissing(folder));
        }
        atomic::write_atomic(path, &bytes, Existing::Replace)?;
        return Ok(path.to_path_buf());
    }

    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = naming::file_name(&naming::local_now(), params.seed, &params.prompt);
    for candidate in naming::candidates(dir, &name) {
        if candidate.exists() {
            continue;
        }
        match atomic::write_atomic(&candidate, &bytes, Existing::Keep) {
            Ok(()) => return Ok(candidate),
            // Someone took the name between our check and our write: try the next one.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::invalid(format!(
        "no free file name for {name} in {}",
        dir.display()
    )))
}
