//! The history schema and its migrations.
//!
//! The schema version lives in SQLite's `PRAGMA user_version`. `MIGRATIONS[i]` takes a
//! database from version `i` to `i + 1`; each runs in its own transaction together with the
//! version bump, so a crash mid-upgrade leaves the old version intact. Never edit a released
//! migration: add a new one. A database from a newer Lantern (a version above ours) is
//! refused rather than touched.

use rusqlite::Connection;

/// Version 1: the first released schema, one row per image.
///
/// `created_at` is Unix milliseconds, UTC: exact range filters and cheap ordering, no
/// parsing of text dates. `seed` holds the u64 seed bit-cast to i64. `extra` holds the
/// parameters we do not interpret, as JSON `[[key, value], …]`.
pub const V1: &str = "
CREATE TABLE generations (
    id              INTEGER PRIMARY KEY,
    created_at      INTEGER NOT NULL,
    prompt          TEXT    NOT NULL,
    negative_prompt TEXT    NOT NULL DEFAULT '',
    model           TEXT    NOT NULL DEFAULT '',
    model_hash      TEXT,
    sampler         TEXT    NOT NULL,
    steps           INTEGER NOT NULL,
    guidance        REAL    NOT NULL,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    seed            INTEGER NOT NULL,
    batch_index     INTEGER NOT NULL DEFAULT 0,
    batch_size      INTEGER NOT NULL DEFAULT 1,
    duration_ms     INTEGER,
    image_path      TEXT    NOT NULL UNIQUE,
    favourite       INTEGER NOT NULL DEFAULT 0,
    extra           TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX generations_by_time  ON generations (created_at DESC, id DESC);
CREATE INDEX generations_by_model ON generations (model, created_at DESC);
CREATE INDEX generations_by_seed  ON generations (seed);
";

/// Version 2: full-text search over prompt and negative prompt.
///
/// FTS5 with the `trigram` tokenizer indexes every run of three characters, so any
/// substring of three or more characters matches, in any script (Chinese has no spaces
/// for a word tokenizer to split on). It is an external-content table: the text lives once,
/// in `generations`, and triggers keep the index in step with every insert, update and
/// delete. Rows written by version 1 are indexed by the final `rebuild`.
pub const V2: &str = "
CREATE VIRTUAL TABLE generations_fts USING fts5(
    prompt, negative_prompt,
    content = 'generations', content_rowid = 'id',
    tokenize = 'trigram'
);
CREATE TRIGGER generations_fts_insert AFTER INSERT ON generations BEGIN
    INSERT INTO generations_fts (rowid, prompt, negative_prompt)
    VALUES (new.id, new.prompt, new.negative_prompt);
END;
CREATE TRIGGER generations_fts_delete AFTER DELETE ON generations BEGIN
    INSERT INTO generations_fts (generations_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
END;
CREATE TRIGGER generations_fts_update AFTER UPDATE OF prompt, negative_prompt ON generations BEGIN
    INSERT INTO generations_fts (generations_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
    INSERT INTO generations_fts (rowid, prompt, negative_prompt)
    VALUES (new.id, new.prompt, new.negative_prompt);
END;
INSERT INTO generations_fts (generations_fts) VALUES ('rebuild');
";

/// Version 3: a content hash per file, so `lantern import` recognises a PNG that was moved
/// or copied (same bytes, new path), and an index for the favourites filter.
pub const V3: &str = "
ALTER TABLE generations ADD COLUMN file_sha256 TEXT;
CREATE INDEX generations_by_hash ON generations (file_sha256) WHERE file_sha256 IS NOT NULL;
CREATE INDEX generations_favourites ON generations (created_at DESC, id DESC) WHERE favourite = 1;
";

/// Version 4: the whole recipe as JSON, so a parameter added to the recipe is kept and
/// restored with no new column. The typed columns stay, written from the same recipe, for
/// search, filters and ordering; rows from before version 4 have no JSON and are read from
/// those columns.
pub const V4: &str = "
ALTER TABLE generations ADD COLUMN recipe TEXT;
";

/// Migration `i` takes version `i` to `i + 1`.
pub const MIGRATIONS: [&str; 4] = [V1, V2, V3, V4];

/// The version this build writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// What stopped a migration.
#[derive(Debug)]
pub enum MigrateError {
    /// The file was written by a newer Lantern.
    TooNew(u32),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// Brings the database up to [`CURRENT_VERSION`]; returns the version it started at.
pub fn migrate(conn: &mut Connection) -> Result<u32, MigrateError> {
    let start = version(conn)?;
    if start > CURRENT_VERSION {
        return Err(MigrateError::TooNew(start));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(start as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        // PRAGMA takes no bound parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {}", from + 1))?;
        tx.commit()?;
        tracing::info!(from, to = from + 1, "migrated the history database");
    }
    Ok(start)
}
