//! Reading diffusers/transformers `config.json` files field by field, so that every value we
//! cannot use becomes an error naming the file and the field.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// A parsed JSON config and the file it came from.
pub struct ConfigFile {
    pub path: PathBuf,
    pub json: Value,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::model(path, "missing config file")
            } else {
                Error::io(path, e)
            }
        })?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| Error::config(path, "(file)", format!("not valid JSON: {e}")))?;
        if !json.is_object() {
            return Err(Error::config(path, "(file)", "expected a JSON object"));
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            json,
        })
    }

    pub fn from_value(path: &Path, json: Value) -> ConfigFile {
        ConfigFile {
            path: path.to_path_buf(),
            json,
        }
    }

    pub fn error(&self, field: &str, message: impl Into<String>) -> Error {
        Error::config(&self.path, field, message)
    }

    /// The raw value, treating JSON `null` as absent.
    pub fn raw(&self, field: &str) -> Option<&Value> {
        self.json.get(field).filter(|v| !v.is_null())
    }

    pub fn has(&self, field: &str) -> bool {
        self.raw(field).is_some()
    }

    pub fn usize_or(&self, field: &str, default: usize) -> Result<usize> {
        match self.raw(field) {
            None => Ok(default),
            Some(v) => {
                as_usize(v).ok_or_else(|| self.error(field, format!("expected a non-negative integer, got {v}")))
            }
        }
    }

    pub fn usize_req(&self, field: &str) -> Result<usize> {
        let v = self
            .raw(field)
            .ok_or_else(|| self.error(field, "required but missing"))?;
        as_usize(v).ok_or_else(|| self.error(field, format!("expected a non-negative integer, got {v}")))
    }

    pub fn opt_usize(&self, field: &str) -> Result<Option<usize>> {
        self.raw(field)
            .map(|v| as_usize(v).ok_or_else(|| self.error(field, format!("expected a non-negative integer, got {v}"))))
            .transpose()
    }

    pub fn f64_or(&self, field: &str, default: f64) -> Result<f64> {
        match self.raw(field) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.error(field, format!("expected a number, got {v}"))),
        }
    }

    pub fn bool_or(&self, field: &str, default: bool) -> Result<bool> {
        match self.raw(field) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.error(field, format!("expected true or false, got {v}"))),
        }
    }

    pub fn str_or<'a>(&'a self, field: &str, default: &'a str) -> Result<&'a str> {
        match self.raw(field) {
            None => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.error(field, format!("expected a string, got {v}"))),
        }
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<&str>> {
        self.raw(field)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.error(field, format!("expected a string, got {v}")))
            })
            .transpose()
    }

    /// A list of strings (block type lists).
    pub fn str_list(&self, field: &str) -> Result<Option<Vec<String>>> {
        let Some(v) = self.raw(field) else {
            return Ok(None);
        };
        let arr = v
            .as_array()
            .ok_or_else(|| self.error(field, format!("expected a list, got {v}")))?;
        arr.iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.error(field, format!("expected strings, got {x}")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// A list of integers, required to be non-empty.
    pub fn usize_list(&self, field: &str) -> Result<Option<Vec<usize>>> {
        let Some(v) = self.raw(field) else {
            return Ok(None);
        };
        let arr = v
            .as_array()
            .ok_or_else(|| self.error(field, format!("expected a list of integers, got {v}")))?;
        let list = arr
            .iter()
            .map(|x| as_usize(x).ok_or_else(|| self.error(field, format!("expected integers, got {x}"))))
            .collect::<Result<Vec<_>>>()?;
        if list.is_empty() {
            return Err(self.error(field, "must not be empty"));
        }
        Ok(Some(list))
    }

    /// An integer or a list with one integer per block (diffusers accepts both forms).
    pub fn per_block(&self, field: &str, n_blocks: usize, default: Option<usize>) -> Result<Vec<usize>> {
        match self.raw(field) {
            None => default
                .map(|d| vec![d; n_blocks])
                .ok_or_else(|| self.error(field, "required but missing")),
            Some(v) if v.is_array() => {
                let list = self.usize_list(field)?.unwrap_or_default();
                if list.len() != n_blocks {
                    return Err(self.error(
                        field,
                        format!("has {} entries but there are {n_blocks} blocks", list.len()),
                    ));
                }
                Ok(list)
            }
            Some(v) => as_usize(v)
                .map(|x| vec![x; n_blocks])
                .ok_or_else(|| self.error(field, format!("expected an integer or a list, got {v}"))),
        }
    }

    /// Rejects a field unless it is absent or has one of the values we implement.
    pub fn require_default(&self, field: &str, accepted: &[Value]) -> Result<()> {
        match self.raw(field) {
            None => Ok(()),
            Some(v) if accepted.contains(v) => Ok(()),
            Some(v) => Err(self.error(field, format!("value {v} is not supported by Lantern"))),
        }
    }
}

fn as_usize(v: &Value) -> Option<usize> {
    if let Some(u) = v.as_u64() {
        return usize::try_from(u).ok();
    }
    // Some configs write integers as floats (e.g. 8.0).
    v.as_f64()
        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e15)
        .map(|f| f as usize)
}
