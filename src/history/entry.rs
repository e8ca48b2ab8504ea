//! What the history holds per image, what a query asks for, and the JSON form scripts see.

use std::path::PathBuf;

use jiff::Timestamp;
use serde::Serialize;

use crate::recipe::Recipe;
use crate::schedulers::SamplerKind;

/// One recorded image.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: i64,
    /// When the image was made (UTC). For imported files, the file's modification time.
    pub created_at: Timestamp,
    /// Everything needed to make it again ("use these settings").
    pub params: Recipe,
    /// How long generation took, when known (imports do not know).
    pub duration_ms: Option<u64>,
    /// Absolute path of the PNG.
    pub image_path: PathBuf,
    pub favourite: bool,
}

/// An image to record.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntry {
    pub params: Recipe,
    pub image_path: PathBuf,
    pub created_at: Timestamp,
    pub duration_ms: Option<u64>,
    pub favourite: bool,
    /// SHA-256 of the file's bytes (hex), used by imports to recognise a moved or copied file.
    pub file_sha256: Option<String>,
}

impl NewEntry {
    /// An entry made now, not a favourite, with no duration or hash.
    pub fn new(params: Recipe, image_path: impl Into<PathBuf>) -> Self {
        NewEntry {
            params,
            image_path: image_path.into(),
            created_at: Timestamp::now(),
            duration_ms: None,
            favourite: false,
            file_sha256: None,
        }
    }
}

/// Which entries to list: every filter is optional and they combine with AND.
/// Results are newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// Substring search over prompt and negative prompt. Words separated by spaces must all
    /// occur (in any order); case-insensitive for ASCII; works for Chinese and words of one
    /// or two characters too.
    pub search: Option<String>,
    /// Exact model name.
    pub model: Option<String>,
    pub favourites_only: bool,
    /// Made at or after this instant.
    pub since: Option<Timestamp>,
    /// Made strictly before this instant.
    pub until: Option<Timestamp>,
    pub seed: Option<u64>,
    /// Entries to skip (paging).
    pub offset: u64,
    /// Most entries to return; `None` for all.
    pub limit: Option<u64>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            search: None,
            model: None,
            favourites_only: false,
            since: None,
            until: None,
            seed: None,
            offset: 0,
            limit: Some(100),
        }
    }
}

impl Query {
    /// Every entry, no paging.
    pub fn all() -> Self {
        Query {
            limit: None,
            ..Query::default()
        }
    }

    pub fn search(text: impl Into<String>) -> Self {
        Query {
            search: Some(text.into()),
            ..Query::default()
        }
    }
}

/// Timestamps in JSON and tables: RFC 3339, UTC, millisecond precision.
pub fn format_timestamp(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The JSON object `lantern history --json` prints and `lantern history export` writes: the
/// entry's whole recipe (every field at the top level, `sampler` by its `--scheduler` name),
/// plus what the history knows about the file.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EntryJson {
    pub id: i64,
    pub created_at: String,
    #[serde(flatten)]
    pub recipe: Recipe,
    /// The sampler as AUTOMATIC1111 writes it (`DPM++ 2M Karras`).
    pub sampler_a1111: String,
    pub duration_ms: Option<u64>,
    pub path: String,
    pub favourite: bool,
}

impl From<&Entry> for EntryJson {
    fn from(e: &Entry) -> Self {
        EntryJson {
            id: e.id,
            created_at: format_timestamp(e.created_at),
            recipe: e.params.clone(),
            sampler_a1111: a1111_display(e.params.sampler),
            duration_ms: e.duration_ms,
            path: e.image_path.to_string_lossy().into_owned(),
            favourite: e.favourite,
        }
    }
}

/// The old combined A1111 form ("DPM++ 2M Karras"), the one people recognise in a table.
pub fn a1111_display(kind: SamplerKind) -> String {
    match kind.a1111_names() {
        (s, "Automatic") => s.to_string(),
        (s, t) => format!("{s} {t}"),
    }
}
