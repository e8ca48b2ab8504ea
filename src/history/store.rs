//! The SQLite store: opening, recording, querying, favourites, deleting, exporting.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};

use super::entry::{Entry, EntryJson, NewEntry, Query};
use super::schema::{self, MigrateError};
use crate::error::{Error, Result};
use crate::recipe::{NoiseKind, Recipe};
use crate::schedulers::SamplerKind;

/// The columns [`row_to_entry`] reads, in order.
const COLUMNS: &str = "g.id, g.created_at, g.prompt, g.negative_prompt, g.model, g.model_hash, g.sampler, \
     g.steps, g.guidance, g.width, g.height, g.seed, g.batch_index, g.batch_size, g.duration_ms, \
     g.image_path, g.favourite, g.extra, g.recipe";

/// How long to wait for another Lantern process (GUI and CLI at once) holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The generation history, one SQLite file.
///
/// Durability: WAL journal with `synchronous = FULL`. In WAL mode `NORMAL` already survives
/// a killed process (committed pages are in the WAL file, the OS writes them out), but can
/// lose the last commits on power loss or an OS crash; `FULL` fsyncs the WAL at every commit
/// so a row we reported as saved stays saved even then. A commit per generated image (one
/// every few seconds at most) makes that fsync cost nothing the user can notice, and bulk
/// work (imports, rebuilds) batches many rows per commit.
pub struct History {
    pub(super) conn: Connection,
    path: PathBuf,
}

/// Whether an SQLite error means the file itself is damaged (as opposed to locked, full,
/// read-only, …, which must never cause the file to be moved aside).
pub(super) fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

impl History {
    /// Opens (creating if needed) the history at `path` and migrates it to the current schema.
    ///
    /// A file that is not a database or fails SQLite's `quick_check` gives
    /// [`Error::HistoryCorrupt`]; see [`History::open_or_recover`] for the app's answer to that.
    pub fn open(path: &Path) -> Result<History> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let corrupt = |detail: String| Error::HistoryCorrupt {
            path: path.to_path_buf(),
            detail,
        };
        let db_err = |e: rusqlite::Error| {
            if is_corruption(&e) {
                corrupt(e.to_string())
            } else {
                Error::database(path, e)
            }
        };

        let mut conn = Connection::open(path).map_err(db_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
        // The first statement that reads the file: garbage fails here with "not a database".
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(db_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "history database is not in WAL mode");
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(db_err)?;

        // quick_check reads every page (O(size), milliseconds for tens of thousands of rows)
        // but skips the slower index-content cross-checks of a full integrity_check.
        let problems = quick_check(&conn).map_err(db_err)?;
        if !problems.is_empty() {
            return Err(corrupt(problems.join("; ")));
        }

        match schema::migrate(&mut conn) {
            Ok(_) => {}
            Err(MigrateError::TooNew(v)) => {
                return Err(Error::History(format!(
                    "{} uses schema version {v}, but this Lantern understands up to {}; \
                     please update Lantern",
                    path.display(),
                    schema::CURRENT_VERSION
                )));
            }
            Err(MigrateError::Sqlite(e)) => return Err(db_err(e)),
        }
        Ok(History {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema_version(&self) -> Result<u32> {
        schema::version(&self.conn).map_err(|e| self.err(e))
    }

    pub(super) fn err(&self, e: rusqlite::Error) -> Error {
        if is_corruption(&e) {
            Error::HistoryCorrupt {
                path: self.path.clone(),
                detail: e.to_string(),
            }
        } else {
            Error::database(&self.path, e)
        }
    }

    /// SQLite's full `integrity_check` (tables, indexes, the full-text index).
    pub fn check_integrity(&self) -> Result<()> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check").map_err(|e| self.err(e))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))?;
        if rows.len() == 1 && rows[0] == "ok" {
            Ok(())
        } else {
            Err(Error::HistoryCorrupt {
                path: self.path.clone(),
                detail: rows.join("; "),
            })
        }
    }

    /// Records one image and returns its id. Recording the same path again replaces that
    /// row's parameters (the file at that path was replaced too) and keeps its id and
    /// favourite flag.
    pub fn insert(&self, entry: &NewEntry) -> Result<i64> {
        insert_on(&self.conn, entry).map_err(|e| self.err(e))
    }

    /// Records many images in one transaction (imports, rebuilds, benchmarks).
    pub fn insert_many(&mut self, entries: &[NewEntry]) -> Result<Vec<i64>> {
        let path = self.path.clone();
        let map = |e: rusqlite::Error| Error::database(&path, e);
        let tx = self.conn.transaction().map_err(map)?;
        let mut ids = Vec::with_capacity(entries.len());
        for entry in entries {
            ids.push(insert_on(&tx, entry).map_err(map)?);
        }
        tx.commit().map_err(map)?;
        Ok(ids)
    }

    pub fn get(&self, id: i64) -> Result<Option<Entry>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM generations g WHERE g.id = ?1"),
                [id],
                row_to_entry,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The entry recorded for the PNG at `path` (compared after making it absolute).
    pub fn find_by_path(&self, path: &Path) -> Result<Option<Entry>> {
        let key = path_key(path);
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM generations g WHERE g.image_path = ?1"),
                [key],
                row_to_entry,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Entries matching `query`, newest first.
    pub fn list(&self, query: &Query) -> Result<Vec<Entry>> {
        let (where_sql, mut args) = where_clause(query);
        let mut sql = format!("SELECT {COLUMNS} FROM generations g{where_sql} ORDER BY g.created_at DESC, g.id DESC");
        // LIMIT -1 means no limit in SQLite; OFFSET needs a LIMIT before it.
        sql.push_str(" LIMIT ? OFFSET ?");
        args.push(Value::Integer(query.limit.map_or(-1, clamp_i64)));
        args.push(Value::Integer(clamp_i64(query.offset)));
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), row_to_entry)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// How many entries match `query`'s filters (its offset and limit are ignored).
    pub fn count(&self, query: &Query) -> Result<u64> {
        let (where_sql, args) = where_clause(query);
        let sql = format!("SELECT count(*) FROM generations g{where_sql}");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let n: i64 = stmt
            .query_row(rusqlite::params_from_iter(args), |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(n.max(0) as u64)
    }

    /// Every model name with its number of entries, most used first (for the model filter).
    pub fn models(&self) -> Result<Vec<(String, u64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT model, count(*) FROM generations GROUP BY model ORDER BY count(*) DESC, model")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Marks or unmarks a favourite; `false` when there is no such entry.
    pub fn set_favourite(&self, id: i64, favourite: bool) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE generations SET favourite = ?2 WHERE id = ?1",
                params![id, favourite],
            )
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Removes an entry, and its PNG too when `delete_file` is set. Returns the removed entry
    /// (`None` when there was none). If the file cannot be removed (other than being gone
    /// already) the entry stays and the error says why, so the two never disagree.
    pub fn delete(&mut self, id: i64, delete_file: bool) -> Result<Option<Entry>> {
        let Some(entry) = self.get(id)? else {
            return Ok(None);
        };
        let path = self.path.clone();
        let map = |e: rusqlite::Error| Error::database(&path, e);
        let tx = self.conn.transaction().map_err(map)?;
        tx.execute("DELETE FROM generations WHERE id = ?1", [id]).map_err(map)?;
        if delete_file {
            match std::fs::remove_file(&entry.image_path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&entry.image_path, e)), // tx rolls back on drop
            }
        }
        tx.commit().map_err(map)?;
        Ok(Some(entry))
    }

    /// Points an entry at a new file location (a moved PNG found again by its content hash).
    pub fn relink(&self, id: i64, new_path: &Path) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE generations SET image_path = ?2 WHERE id = ?1",
                params![id, path_key(new_path)],
            )
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// The entry whose file had these bytes, if any.
    pub fn find_by_hash(&self, sha256: &str) -> Result<Option<Entry>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM generations g WHERE g.file_sha256 = ?1 ORDER BY g.id LIMIT 1"),
                [sha256],
                row_to_entry,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// All entries as [`EntryJson`] objects, newest first.
    pub fn export_entries(&self) -> Result<Vec<EntryJson>> {
        Ok(self.list(&Query::all())?.iter().map(EntryJson::from).collect())
    }

    /// Writes the whole history as a JSON array to `file` (atomically); returns the count.
    pub fn export_json(&self, file: &Path) -> Result<usize> {
        let entries = self.export_entries()?;
        let mut text = serde_json::to_string_pretty(&entries)
            .map_err(|e| Error::History(format!("cannot serialise the history: {e}")))?;
        text.push('\n');
        let folder = crate::output::atomic::parent_dir(file);
        if !folder.is_dir() {
            return Err(Error::OutputFolderMissing(folder));
        }
        crate::output::atomic::write_atomic(file, text.as_bytes(), crate::output::atomic::Existing::Replace)?;
        Ok(entries.len())
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Seeds are u64; SQLite integers are i64. Stored bit-for-bit.
fn seed_to_sql(seed: u64) -> i64 {
    seed as i64
}

fn seed_from_sql(v: i64) -> u64 {
    v as u64
}

/// How a path is stored: absolute, symlinks resolved when the file exists, so the same file
/// reached two ways is one entry. Non-UTF-8 paths are stored lossily (rare; logged).
pub fn path_key(path: &Path) -> String {
    let abs = std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf());
    match abs.to_str() {
        Some(s) => s.to_string(),
        None => {
            tracing::warn!(path = %abs.display(), "image path is not valid UTF-8; stored lossily");
            abs.to_string_lossy().into_owned()
        }
    }
}

fn insert_on(conn: &Connection, e: &NewEntry) -> rusqlite::Result<i64> {
    let p = &e.params;
    let extra = serde_json::to_string(&p.extra).unwrap_or_else(|_| "[]".into());
    let recipe = serde_json::to_string(p).ok();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO generations (created_at, prompt, negative_prompt, model, model_hash, sampler, steps, \
             guidance, width, height, seed, batch_index, batch_size, duration_ms, image_path, favourite, extra, \
             file_sha256, recipe)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
         ON CONFLICT (image_path) DO UPDATE SET
             created_at = excluded.created_at, prompt = excluded.prompt,
             negative_prompt = excluded.negative_prompt, model = excluded.model,
             model_hash = excluded.model_hash, sampler = excluded.sampler, steps = excluded.steps,
             guidance = excluded.guidance, width = excluded.width, height = excluded.height,
             seed = excluded.seed, batch_index = excluded.batch_index, batch_size = excluded.batch_size,
             duration_ms = excluded.duration_ms, extra = excluded.extra,
             file_sha256 = excluded.file_sha256, recipe = excluded.recipe
         RETURNING id",
    )?;
    stmt.query_row(
        params![
            e.created_at.as_millisecond(),
            p.prompt,
            p.negative_prompt,
            p.model,
            p.model_hash,
            p.sampler.cli_name(),
            p.steps,
            p.guidance,
            p.width,
            p.height,
            seed_to_sql(p.seed),
            p.batch_index,
            p.batch_size,
            e.duration_ms.map(clamp_i64),
            path_key(&e.image_path),
            e.favourite,
            extra,
            e.file_sha256,
            recipe,
        ],
        |r| r.get(0),
    )
}

fn row_to_entry(r: &Row<'_>) -> rusqlite::Result<Entry> {
    let recipe_json: Option<String> = r.get(18)?;
    let mut params = match recipe_json.as_deref().map(serde_json::from_str::<Recipe>) {
        Some(Ok(recipe)) => recipe,
        _ => recipe_from_columns(r)?,
    };
    // Rows from before a field had a typed home kept it among the extras.
    params.adopt_typed_extras();
    let created_ms: i64 = r.get(1)?;
    Ok(Entry {
        id: r.get(0)?,
        created_at: Timestamp::from_millisecond(created_ms).unwrap_or(Timestamp::UNIX_EPOCH),
        params,
        duration_ms: r.get::<_, Option<i64>>(14)?.map(|d| d.max(0) as u64),
        image_path: PathBuf::from(r.get::<_, String>(15)?),
        favourite: r.get(16)?,
    })
}

/// The recipe of a row written before the JSON column existed (or whose JSON is unreadable).
fn recipe_from_columns(r: &Row<'_>) -> rusqlite::Result<Recipe> {
    let sampler_text: String = r.get(6)?;
    let sampler = SamplerKind::from_cli_name(&sampler_text)
        .or_else(|| SamplerKind::from_a1111(&sampler_text, None))
        .unwrap_or(SamplerKind::Default);
    let extra_text: String = r.get(17)?;
    let extra: Vec<(String, String)> = serde_json::from_str(&extra_text).unwrap_or_default();
    let u32_col = |i: usize| -> rusqlite::Result<u32> { Ok(u32::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
    Ok(Recipe {
        prompt: r.get(2)?,
        negative_prompt: r.get(3)?,
        model: r.get(4)?,
        model_hash: r.get(5)?,
        vae: None,
        vae_hash: None,
        lora_hashes: Vec::new(),
        ti_hashes: Vec::new(),
        sampler,
        steps: u32_col(7)?,
        guidance: r.get(8)?,
        width: u32_col(9)?,
        height: u32_col(10)?,
        seed: seed_from_sql(r.get(11)?),
        batch_index: u32_col(12)?,
        batch_size: u32_col(13)?,
        // Rows this old were made with Lantern's own generator.
        rng: NoiseKind::before_choice(),
        clip_skip: 1,
        // Rows this old were made when every prompt was plain text.
        prompt_syntax: crate::recipe::PromptSyntax::legacy(),
        extra,
        // Rows this old were all txt2img.
        ..Recipe::default()
    })
}

/// `" WHERE …"` (or `""`) and its arguments for a query's filters.
fn where_clause(q: &Query) -> (String, Vec<Value>) {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(text) = q.search.as_deref() {
        let mut fts_terms = Vec::new();
        // A word given twice narrows nothing; a pasted paragraph repeats many.
        let mut seen = std::collections::HashSet::new();
        for word in text.split_whitespace().filter(|w| seen.insert(*w)) {
            if word.chars().count() >= 3 {
                // A quoted FTS5 string: the trigram index finds it as a substring.
                fts_terms.push(format!("\"{}\"", word.replace('"', "\"\"")));
            } else {
                // Too short for a trigram: a LIKE scan (cheap enough for tens of thousands of rows).
                let pattern = format!("%{}%", escape_like(word));
                conds.push("(g.prompt LIKE ? ESCAPE '\\' OR g.negative_prompt LIKE ? ESCAPE '\\')".into());
                args.push(Value::Text(pattern.clone()));
                args.push(Value::Text(pattern));
            }
        }
        if !fts_terms.is_empty() {
            conds.push("g.id IN (SELECT rowid FROM generations_fts WHERE generations_fts MATCH ?)".into());
            args.push(Value::Text(fts_terms.join(" AND ")));
        }
    }
    if let Some(model) = &q.model {
        conds.push("g.model = ?".into());
        args.push(Value::Text(model.clone()));
    }
    if q.favourites_only {
        conds.push("g.favourite = 1".into());
    }
    if let Some(since) = q.since {
        conds.push("g.created_at >= ?".into());
        args.push(Value::Integer(since.as_millisecond()));
    }
    if let Some(until) = q.until {
        conds.push("g.created_at < ?".into());
        args.push(Value::Integer(until.as_millisecond()));
    }
    if let Some(seed) = q.seed {
        conds.push("g.seed = ?".into());
        args.push(Value::Integer(seed_to_sql(seed)));
    }
    if conds.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", all_of(&conds)), args)
    }
}

/// `a AND b AND …` as a balanced tree: SQLite refuses expressions nested more than 1000 deep,
/// and a chain of ANDs nests one level per term (a search of 1000 short words failed).
fn all_of(conds: &[String]) -> String {
    match conds {
        [] => "1".into(),
        [one] => one.clone(),
        _ => {
            let (left, right) = conds.split_at(conds.len() / 2);
            format!("({} AND {})", all_of(left), all_of(right))
        }
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA quick_check")?;
    let rows: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(if rows.len() == 1 && rows[0] == "ok" {
        Vec::new()
    } else {
        rows
    })
}
