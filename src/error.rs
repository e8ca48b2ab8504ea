//! The library's error type: every failure a user can cause or meet has a variant whose
//! `Display` is one plain line (the CLI prints exactly that; the GUI shows it in the status line).
//!
//! Every error also has a [`Kind`] ([`Error::kind`]): what the window decides on (the offline
//! notice, "Try again"), never the wording. An error that crosses a thread travels as a
//! [`Failure`]: its kind and its line, cloneable.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config file has a value we cannot use. Names the file and the field.
    #[error("{file}: field `{field}`: {message}")]
    Config {
        file: PathBuf,
        field: String,
        message: String,
    },

    /// A weight file is missing, truncated, or lacks a tensor the config implies.
    #[error("{file}: {message}")]
    Weights { file: PathBuf, message: String },

    /// A model folder that is not a usable diffusers pipeline.
    #[error("{path}: {message}")]
    Model { path: PathBuf, message: String },

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A request the pipeline cannot run (bad size, zero steps, NaN guidance, …).
    #[error("{0}")]
    InvalidRequest(String),

    /// The tokenizer files are unusable.
    #[error("{path}: {message}")]
    Tokenizer { path: PathBuf, message: String },

    /// The user cancelled; nothing was written.
    #[error("cancelled")]
    Cancelled,

    /// The model server could not be reached or answered with an error. One line, says what to
    /// do next where we know. Its kind: [`Kind::Offline`] (refused connection, DNS failure,
    /// timeout), [`Kind::Unauthorized`] (HTTP 401/403), [`Kind::NotFound`] (HTTP 404) or
    /// [`Kind::Network`] (HTTP 429/5xx, a dropped connection, an answer we cannot read).
    #[error("{0}")]
    Network(Failure),

    /// A download went wrong after the server answered. Its kind: [`Kind::Checksum`] (wrong
    /// size or sha256; the partial file is deleted), [`Kind::NotFound`] (a file the repository
    /// does not have), [`Kind::Model`] (a repo that is not a diffusers pipeline we can use),
    /// [`Kind::Network`] (a listing or answer we cannot use), [`Kind::Internal`].
    #[error("{0}")]
    Download(Failure),

    /// Not enough free space for a download; refused before anything is fetched.
    #[error("not enough disk space in {path}: the download needs {needed} more but only {available} is free")]
    DiskSpace {
        path: PathBuf,
        needed: crate::format::ByteSize,
        available: crate::format::ByteSize,
    },

    /// The built-in model catalog (assets/models.toml) is malformed.
    #[error("model catalog: {0}")]
    Catalog(String),

    /// A tensor operation failed (shape mismatch, out of memory, device error).
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),

    /// Bytes that are not a PNG we can read, or an image we could not encode.
    /// `path` is `None` for in-memory data (drag and drop, clipboard).
    #[error("{}{message}", display_path_prefix(.path.as_deref()))]
    Png { path: Option<PathBuf>, message: String },

    /// Text that is not AUTOMATIC1111-style generation parameters.
    #[error("not generation parameters: {0}")]
    Parameters(String),

    /// The folder an explicit output path points into does not exist. We do not create
    /// arbitrary folder chains for a path the user typed: a typo would silently scatter files.
    #[error("output folder {} does not exist", .0.display())]
    OutputFolderMissing(PathBuf),

    /// The history database failed (locked, disk full, corrupt, …).
    #[error("history database {}: {source}", .path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// The history database is not a database or fails SQLite's integrity check.
    /// [`crate::history::History::open_or_recover`] answers this by rebuilding from the PNGs.
    #[error("history database {} is damaged: {detail}", .path.display())]
    HistoryCorrupt { path: PathBuf, detail: String },

    /// A history problem that is not an SQLite error (e.g. a schema from a newer Lantern).
    #[error("history: {0}")]
    History(String),

    /// A LoRA that cannot be used with the loaded model (missing, not a LoRA, another family).
    #[error("LoRA `{name}`: {message}")]
    Lora { name: String, message: String },

    /// A textual-inversion embedding that cannot be used with the loaded model.
    #[error("embedding `{name}`: {message}")]
    Embedding { name: String, message: String },
}

fn display_path_prefix(path: Option<&std::path::Path>) -> String {
    path.map(|p| format!("{}: ", p.display())).unwrap_or_default()
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an error is, for code that reacts to it (the window's offline notice,
/// which downloads can be retried). Messages may be reworded freely; kinds are the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The model server could not be reached at all: no network, DNS failure, refused
    /// connection, no answer in time.
    Offline,
    /// The server was reached but the exchange failed: HTTP 429 or 5xx, a connection lost
    /// mid-file, an answer we cannot use.
    Network,
    /// The server refused us (HTTP 401/403): a gated or private repo, a missing or wrong token.
    Unauthorized,
    /// The server does not have it: an unknown repo, revision or file.
    NotFound,
    /// Downloaded content does not match its size or sha256.
    Checksum,
    /// Not enough free disk space.
    DiskFull,
    /// The user cancelled.
    Cancelled,
    /// A request, setting, name or file given to Lantern that it cannot use.
    InvalidInput,
    /// A model (folder, config, weights, tokenizer, repo layout) that Lantern cannot use.
    Model,
    /// A file could not be read or written.
    Io,
    /// The history database failed or is damaged.
    History,
    /// A failure inside Lantern or its compute backend (tensor errors, a panic, a thread that
    /// stopped, the built-in catalog).
    Internal,
}

/// An error as it travels between threads: its [`Kind`], to decide on, and its one-line
/// message, to show. Made from an [`Error`] with `Failure::from(&error)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<&Error> for Failure {
    fn from(error: &Error) -> Self {
        Failure::new(error.kind(), error.to_string())
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::from(&error)
    }
}

impl Error {
    /// What kind of failure this is (see [`Kind`]).
    pub fn kind(&self) -> Kind {
        match self {
            Error::Config { .. } | Error::Weights { .. } | Error::Model { .. } | Error::Tokenizer { .. } => Kind::Model,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => Kind::DiskFull,
            Error::Io { .. } => Kind::Io,
            Error::InvalidRequest(_)
            | Error::Png { .. }
            | Error::Parameters(_)
            | Error::OutputFolderMissing(_)
            | Error::Lora { .. }
            | Error::Embedding { .. } => Kind::InvalidInput,
            Error::Cancelled => Kind::Cancelled,
            Error::Network(failure) | Error::Download(failure) => failure.kind,
            Error::DiskSpace { .. } => Kind::DiskFull,
            Error::Catalog(_) | Error::Tensor(_) => Kind::Internal,
            Error::Database { source, .. } if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
                Kind::DiskFull
            }
            Error::Database { .. } | Error::HistoryCorrupt { .. } | Error::History(_) => Kind::History,
        }
    }

    /// The server could not be reached ([`Kind::Offline`]).
    pub fn offline(message: impl Into<String>) -> Self {
        Error::Network(Failure::new(Kind::Offline, message))
    }

    /// The server was reached but the exchange failed ([`Kind::Network`]).
    pub fn network(message: impl Into<String>) -> Self {
        Error::Network(Failure::new(Kind::Network, message))
    }

    /// A download problem after the server answered, of the given kind.
    pub fn download(kind: Kind, message: impl Into<String>) -> Self {
        Error::Download(Failure::new(kind, message))
    }

    pub fn config(file: impl Into<PathBuf>, field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            file: file.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn embedding(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Embedding {
            name: name.into(),
            message: message.into(),
        }
    }

    pub fn lora(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Lora {
            name: name.into(),
            message: message.into(),
        }
    }

    pub fn weights(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Weights {
            file: file.into(),
            message: message.into(),
        }
    }

    pub fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn tokenizer(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Tokenizer {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn png(path: Option<&std::path::Path>, message: impl Into<String>) -> Self {
        Error::Png {
            path: path.map(|p| p.to_path_buf()),
            message: message.into(),
        }
    }

    pub fn database(path: impl Into<PathBuf>, source: rusqlite::Error) -> Self {
        Error::Database {
            path: path.into(),
            source,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidRequest(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_the_kind_and_the_line() {
        let offline = Error::offline("cannot reach huggingface.co: connection refused");
        assert_eq!(offline.kind(), Kind::Offline);
        assert_eq!(
            Failure::from(&offline),
            Failure::new(Kind::Offline, "cannot reach huggingface.co: connection refused")
        );
        assert_eq!(Failure::from(Error::Cancelled).kind, Kind::Cancelled);
        assert_eq!(Error::download(Kind::Checksum, "x").kind(), Kind::Checksum);
        assert_eq!(Error::network("x").kind(), Kind::Network);
        assert_eq!(Error::weights("unet/x.safetensors", "truncated").kind(), Kind::Model);
        assert_eq!(Error::invalid("steps must be at least 1").kind(), Kind::InvalidInput);

        let full = Error::io("/out/a.png", std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!(full.kind(), Kind::DiskFull);
        let failure = Failure::from(&full);
        assert_eq!((failure.kind, failure.to_string()), (Kind::DiskFull, full.to_string()));
        let missing = Error::io("/out/a.png", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(missing.kind(), Kind::Io);
    }
}
