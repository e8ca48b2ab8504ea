//! The library's error type: every failure a user can cause or meet has a variant whose
//! `Display` is one plain line (the CLI prints exactly that; the GUI shows it in the status line).

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

    /// The model server could not be reached or answered with an error (refused connection,
    /// DNS failure, timeout, HTTP 4xx/5xx). One line, says what to do next where we know.
    #[error("{0}")]
    Network(String),

    /// A download went wrong after the server answered: wrong size, wrong sha256, a file the
    /// repository does not have. The partial file is deleted when its content is wrong.
    #[error("{0}")]
    Download(String),

    /// Not enough free space for a download; refused before anything is fetched.
    #[error(
        "not enough disk space in {path}: the download needs {needed} more but only {available} is free"
    )]
    DiskSpace {
        path: PathBuf,
        needed: crate::models::ByteSize,
        available: crate::models::ByteSize,
    },

    /// The built-in model catalog (assets/models.toml) is malformed.
    #[error("model catalog: {0}")]
    Catalog(String),

    /// A tensor operation failed (shape mismatch, out of memory, device error).
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn config(
        file: impl Into<PathBuf>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Config {
            file: file.into(),
            field: field.into(),
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

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidRequest(message.into())
    }
}
