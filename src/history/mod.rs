//! The generation history: every image Lantern saves, in an SQLite file, searchable and
//! restorable; rebuilt from the PNGs themselves when the file is lost or damaged.
//!
//! ```no_run
//! use lantern::history::{History, Query};
//! let opened = History::open_default()?;
//! if let Some(notice) = &opened.notice {
//!     eprintln!("{notice}"); // "history was damaged; moved aside to …; rebuilt 12 entries from PNGs"
//! }
//! for entry in opened.history.list(&Query::search("狐狸"))? {
//!     println!("{} {}", entry.id, entry.params.prompt);
//! }
//! # Ok::<(), lantern::Error>(())
//! ```

pub mod entry;
pub mod import;
pub mod recovery;
pub mod schema;
pub mod store;
pub mod thumbnails;

use std::path::Path;
use std::time::Duration;

pub use entry::{Entry, EntryJson, NewEntry, Query, format_timestamp};
pub use import::ImportReport;
pub use recovery::{Opened, RecoveryNotice};
pub use store::History;
pub use thumbnails::{thumbnail_for, thumbnail_in};

use crate::error::Result;
use crate::recipe::Recipe;

/// Records one saved image (what [`crate::save::Saver`] does after each PNG); returns the
/// entry's id.
pub fn record_in(history: &History, params: &Recipe, image_path: &Path, duration: Duration) -> Result<i64> {
    let entry = NewEntry {
        duration_ms: Some(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)),
        file_sha256: import::hash_file(image_path),
        ..NewEntry::new(params.clone(), image_path)
    };
    history.insert(&entry)
}
