//! Reading only the JSON header of a `.safetensors` file, so discovery can tell a weight file's
//! precision without mapping or loading any tensor (a 5 GB UNet costs one small read).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Headers larger than this are not real safetensors files (the format caps them at 100 MB).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The set of tensor dtypes named in the header ("F32", "F16", "BF16", "I64", …).
pub fn dtypes(path: &Path) -> Result<BTreeSet<String>> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes)
        .map_err(|_| Error::weights(path, "too short to be a safetensors file"))?;
    let len = u64::from_le_bytes(len_bytes);
    if len == 0 || len > MAX_HEADER_BYTES {
        return Err(Error::weights(
            path,
            format!("not a safetensors file (header length {len})"),
        ));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|_| Error::weights(path, "truncated safetensors header"))?;
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| Error::weights(path, format!("unreadable safetensors header: {e}")))?;
    Ok(json
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .filter_map(|(_, info)| info.get("dtype")?.as_str().map(str::to_owned))
        .collect())
}
