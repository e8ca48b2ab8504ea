//! The data folder's `inputs/`: every init image and mask a job used, one PNG named by the
//! hash of its pixels. A recipe names its pictures by these hashes ([`crate::recipe::Recipe`]'s
//! `init_image` and `mask`), so the history can give a whole job back while the same picture
//! used a hundred times is kept once.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::decode::GrayImage;
use crate::error::{Error, Result};
use crate::output::RgbImage;
use crate::output::atomic::{Existing, write_atomic};

/// The hex digits of a picture's hash kept in names (64 bits: no two of a person's pictures
/// collide).
const HASH_CHARS: usize = 16;

#[derive(Clone, Debug)]
pub struct InputStore {
    dir: PathBuf,
}

impl InputStore {
    pub fn new(dir: impl Into<PathBuf>) -> InputStore {
        InputStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps `image` (if it is not kept already) and returns its hash.
    pub fn put(&self, image: &RgbImage) -> Result<String> {
        image.validate()?;
        let hash = content_hash(image);
        let path = self.path_of(&hash)?;
        if path.is_file() {
            return Ok(hash);
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let bytes = crate::output::png::encode_png(image, None)?;
        match write_atomic(&path, &bytes, Existing::Keep) {
            Ok(()) => Ok(hash),
            // Another job kept the same picture a moment ago.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => Ok(hash),
            Err(e) => Err(e),
        }
    }

    /// Keeps a mask (as a grey picture).
    pub fn put_mask(&self, mask: &GrayImage) -> Result<String> {
        mask.validate()?;
        self.put(&mask.to_rgb())
    }

    /// The picture kept under `hash`.
    pub fn get(&self, hash: &str) -> Result<RgbImage> {
        let path = self.path_of(hash)?;
        if !path.is_file() {
            return Err(Error::invalid(format!(
                "the picture {hash} this job started from is no longer in {}",
                self.dir.display()
            )));
        }
        crate::output::decode_png_file(&path)
    }

    /// The mask kept under `hash`.
    pub fn get_mask(&self, hash: &str) -> Result<GrayImage> {
        Ok(GrayImage::from_rgb(&self.get(hash)?))
    }

    /// Where `hash` is kept; a hash is hex digits only, so a recipe read from a stranger's PNG
    /// cannot name a path outside the folder.
    pub fn path_of(&self, hash: &str) -> Result<PathBuf> {
        if hash.len() != HASH_CHARS || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "`{}` is not the hash of a kept picture",
                crate::format::printable(hash)
            )));
        }
        Ok(self.dir.join(format!("{}.png", hash.to_ascii_lowercase())))
    }
}

/// SHA-256 of the size and the RGB bytes, first [`HASH_CHARS`] hex digits.
pub fn content_hash(image: &RgbImage) -> String {
    let mut h = Sha256::new();
    h.update(format!("rgb8 {}x{}\n", image.width, image.height).as_bytes());
    h.update(&image.data);
    let digest = h.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect::<String>()[..HASH_CHARS].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_picture_is_kept_once_and_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = InputStore::new(dir.path().join("inputs"));
        let image = RgbImage::from_raw(2, 1, vec![1, 2, 3, 250, 251, 252]).unwrap();
        let a = store.put(&image).unwrap();
        let b = store.put(&image).unwrap();
        assert_eq!(a, b);
        assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 1);
        assert_eq!(store.get(&a).unwrap(), image);
        let other = RgbImage::from_raw(1, 2, image.data.clone()).unwrap();
        assert_ne!(store.put(&other).unwrap(), a, "the size is part of the picture");
        let mask = GrayImage {
            width: 3,
            height: 1,
            data: vec![0, 128, 255],
        };
        let m = store.put_mask(&mask).unwrap();
        assert_eq!(store.get_mask(&m).unwrap(), mask);
    }

    #[test]
    fn hashes_cannot_name_other_files() {
        let store = InputStore::new("/data/inputs");
        for bad in ["../../etc/passwd", "", "0123456789abcdeg", "0123456789abcdef0"] {
            assert!(store.path_of(bad).is_err(), "{bad}");
        }
        assert!(
            store
                .get("0123456789abcdef")
                .unwrap_err()
                .to_string()
                .contains("no longer")
        );
    }
}
