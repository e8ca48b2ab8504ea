//! A safetensors header read on its own (one small read, no mapping): the tensors' names,
//! shapes and dtypes and the `__metadata__` strings. Everything a single-file checkpoint's
//! family and architecture are decided from, and every way the file can be broken is
//! caught here with one line before anything is loaded.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// The format caps headers at 100 MB; a real checkpoint's is a few hundred KB.
const MAX_HEADER_BYTES: u64 = 100_000_000;

#[derive(Clone, Debug)]
pub struct TensorMeta {
    pub shape: Vec<usize>,
    /// "F32", "F16", "BF16", "I64", …
    pub dtype: String,
}

#[derive(Clone, Debug, Default)]
pub struct Header {
    pub tensors: HashMap<String, TensorMeta>,
    pub metadata: HashMap<String, String>,
}

impl Header {
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Distinct values of the `{n}` in `prefix{n}.` among the names, e.g. the block indices.
    pub fn indices(&self, prefix: &str) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .names()
            .filter_map(|n| n.strip_prefix(prefix)?.split('.').next()?.parse().ok())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The floating-point dtypes the tensors are stored in.
    pub fn float_dtypes(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .tensors
            .values()
            .map(|t| t.dtype.as_str())
            .filter(|d| matches!(*d, "F32" | "F16" | "BF16" | "F64"))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "F32" | "I32" | "U32" => 4,
        "F64" | "I64" | "U64" => 8,
        _ => return None,
    })
}

/// Reads and checks the header of `path`: its length against the file, every tensor's byte
/// range against its shape and dtype, and the data against the file's size.
pub fn read(path: &Path) -> Result<Header> {
    let bad = |msg: String| Error::weights(path, msg);
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if file_len == 0 {
        return Err(bad("empty file (0 bytes), not a safetensors checkpoint".into()));
    }
    if file_len < 8 {
        return Err(bad(format!("not a valid safetensors file (only {file_len} bytes)")));
    }
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes).map_err(|e| Error::io(path, e))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER_BYTES {
        return Err(bad(format!(
            "not a safetensors file (its first 8 bytes claim a {header_len}-byte header)"
        )));
    }
    if 8 + header_len > file_len {
        return Err(bad(format!(
            "truncated: the file is {} bytes shorter than its header says (interrupted download?)",
            8 + header_len - file_len
        )));
    }
    let mut raw = vec![0u8; header_len as usize];
    file.read_exact(&mut raw).map_err(|e| Error::io(path, e))?;
    let json: serde_json::Map<String, Value> =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("not a valid safetensors file ({e})")))?;
    let data_len = file_len - 8 - header_len;
    let mut header = Header::default();
    let mut end_max = 0u64;
    for (name, info) in json {
        if name == "__metadata__" {
            if let Value::Object(m) = info {
                for (k, v) in m {
                    if let Value::String(s) = v {
                        header.metadata.insert(k, s);
                    }
                }
            }
            continue;
        }
        let inconsistent = |why: &str| bad(format!("not a valid safetensors file (tensor `{name}`: {why})"));
        let dtype = info
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| inconsistent("no dtype"))?
            .to_string();
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| inconsistent("no shape"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| inconsistent("bad shape"))?;
        let offsets: Vec<u64> = info
            .get("data_offsets")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let [start, end] = offsets[..] else {
            return Err(inconsistent("bad data_offsets"));
        };
        let size = dtype_size(&dtype).ok_or_else(|| inconsistent(&format!("unknown dtype {dtype}")))?;
        let elements = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        let needed = elements.and_then(|e| e.checked_mul(size));
        if end < start || Some(end - start) != needed {
            let claim = elements.map_or("more than 2^64".to_string(), |e| e.to_string());
            return Err(inconsistent(&format!(
                "shape {shape:?} claims {claim} elements but its data is {} bytes",
                end.saturating_sub(start)
            )));
        }
        end_max = end_max.max(end);
        header.tensors.insert(name, TensorMeta { shape, dtype });
    }
    if end_max > data_len {
        return Err(bad(format!(
            "truncated: the file is {} bytes shorter than its header says (interrupted download?)",
            end_max - data_len
        )));
    }
    Ok(header)
}
