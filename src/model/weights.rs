//! Memory-mapped safetensors weights for one model component.
//!
//! A component folder (`unet/`, `vae/`, `text_encoder/`, …) holds its weights as one
//! `*.safetensors` file, an `.fp16.safetensors` variant, or shards listed in a
//! `*.safetensors.index.json`. Files are memory-mapped; each tensor is copied out once, in the
//! compute dtype, when a module asks for it, so loading never holds two full copies.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Shape, Tensor};
use memmap2::Mmap;
use safetensors::tensor::{Dtype as StDtype, TensorInfo};

use crate::error::{Error, Result};

/// Which of a folder's weight files to read when there is a choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariantPreference {
    /// The full-precision file, else the fp16 variant.
    FullPrecision,
    /// The fp16 variant, else the full-precision file (less to read when computing in f16).
    Fp16,
}

struct MappedFile {
    path: PathBuf,
    mmap: Mmap,
    data_start: usize,
    tensors: HashMap<String, TensorInfo>,
}

struct Store {
    /// What the user sees in errors: the component folder's main weight file.
    display_path: PathBuf,
    files: Vec<MappedFile>,
    /// Tensor name → index into `files`.
    index: HashMap<String, usize>,
}

/// A view of a component's weights under a name prefix, producing tensors in one dtype on
/// one device (candle's VarBuilder idea, with errors that name the file).
#[derive(Clone)]
pub struct Weights {
    store: Arc<Store>,
    prefix: String,
    dtype: DType,
    device: Device,
}

/// The weight files found in a component folder, in the order they will be read.
pub fn find_weight_files(dir: &Path, base: &str, prefer: VariantPreference) -> Result<Vec<PathBuf>> {
    let full = dir.join(format!("{base}.safetensors"));
    let half = dir.join(format!("{base}.fp16.safetensors"));
    let full_index = dir.join(format!("{base}.safetensors.index.json"));
    let half_index = dir.join(format!("{base}.safetensors.index.fp16.json"));
    let half_index_alt = dir.join(format!("{base}.fp16.safetensors.index.json"));

    let single = match prefer {
        VariantPreference::FullPrecision => [&full, &half],
        VariantPreference::Fp16 => [&half, &full],
    };
    if let Some(p) = single.into_iter().find(|p| p.is_file()) {
        return Ok(vec![p.clone()]);
    }
    for index in [&full_index, &half_index, &half_index_alt] {
        if index.is_file() {
            return shards_from_index(index);
        }
    }
    let pickles: Vec<_> = ["bin", "ckpt", "pt"]
        .iter()
        .map(|ext| dir.join(format!("{base}.{ext}")))
        .filter(|p| p.is_file())
        .collect();
    if !pickles.is_empty() {
        return Err(Error::weights(
            &pickles[0],
            "only PyTorch pickle weights here; Lantern reads .safetensors only (pickles can run code). Convert the model or download its safetensors files",
        ));
    }
    if !dir.is_dir() {
        return Err(Error::model(dir, "component folder is missing"));
    }
    Err(Error::weights(
        &full,
        format!("missing weight file (looked for {base}.safetensors, {base}.fp16.safetensors and a sharded index)"),
    ))
}

fn shards_from_index(index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::weights(index, format!("not valid JSON: {e}")))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::weights(index, "no `weight_map` object"))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = Vec::new();
    for file in map.values() {
        let name = file
            .as_str()
            .ok_or_else(|| Error::weights(index, "`weight_map` values must be file names"))?;
        let path = dir.join(name);
        if !files.contains(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn map_file(path: &Path) -> Result<MappedFile> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the file is opened read-only and we never write through the map. Another
    // process truncating it while we read is the one hazard, as for every mmap user.
    let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let corrupt = |msg: String| Error::weights(path, format!("not a valid safetensors file ({msg})"));
    if mmap.len() < 8 {
        return Err(corrupt(format!("only {} bytes", mmap.len())));
    }
    let header_len = u64::from_le_bytes(mmap[..8].try_into().expect("8 bytes")) as usize;
    let data_start = 8usize
        .checked_add(header_len)
        .filter(|&end| end <= mmap.len())
        .ok_or_else(|| Error::weights(path, "truncated: the header runs past the end of the file"))?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&mmap[..]).or_else(|e| match e {
        // read_metadata also checks the data length; we report truncation ourselves below.
        safetensors::SafeTensorError::MetadataIncompleteBuffer => {
            serde_json::from_slice(&mmap[8..data_start]).map_err(|e| corrupt(e.to_string()))
        }
        other => Err(corrupt(other.to_string())),
    })?;
    let mut tensors = HashMap::new();
    let mut data_len = 0usize;
    for (name, info) in metadata.tensors() {
        data_len = data_len.max(info.data_offsets.1);
        tensors.insert(name, info.clone());
    }
    let available = mmap.len() - data_start;
    if data_len > available {
        return Err(Error::weights(
            path,
            format!(
                "truncated: the header promises {data_len} bytes of tensor data but the file holds {available} (an interrupted download?)"
            ),
        ));
    }
    Ok(MappedFile {
        path: path.to_path_buf(),
        mmap,
        data_start,
        tensors,
    })
}

fn candle_dtype(dtype: StDtype) -> Option<DType> {
    Some(match dtype {
        StDtype::F32 => DType::F32,
        StDtype::F16 => DType::F16,
        StDtype::BF16 => DType::BF16,
        StDtype::F64 => DType::F64,
        StDtype::U8 => DType::U8,
        StDtype::U32 => DType::U32,
        StDtype::I64 => DType::I64,
        _ => return None,
    })
}

impl Weights {
    /// Maps the weight files of one component folder.
    pub fn open(dir: &Path, base: &str, prefer: VariantPreference, dtype: DType, device: &Device) -> Result<Weights> {
        let paths = find_weight_files(dir, base, prefer)?;
        Self::from_files(&paths, dtype, device)
    }

    pub fn from_files(paths: &[PathBuf], dtype: DType, device: &Device) -> Result<Weights> {
        let mut files = Vec::with_capacity(paths.len());
        let mut index = HashMap::new();
        for (i, path) in paths.iter().enumerate() {
            let mapped = map_file(path)?;
            for name in mapped.tensors.keys() {
                index.insert(name.clone(), i);
            }
            files.push(mapped);
        }
        let display_path = paths.first().cloned().unwrap_or_default();
        Ok(Weights {
            store: Arc::new(Store {
                display_path,
                files,
                index,
            }),
            prefix: String::new(),
            dtype,
            device: device.clone(),
        })
    }

    /// The main weight file (for messages and hashing).
    pub fn path(&self) -> &Path {
        &self.store.display_path
    }

    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.store.files.iter().map(|f| f.path.as_path())
    }

    /// The dtype weights are stored in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The dtype activations are computed in: always f32 on the CPU (f16/bf16 weights are
    /// then a storage format, widened as each layer uses them), the weights' dtype elsewhere.
    pub fn compute_dtype(&self) -> DType {
        if self.device.is_cpu() { DType::F32 } else { self.dtype }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype the first floating-point tensor is stored in (fp32/fp16/bf16 reporting).
    pub fn stored_dtype(&self) -> Option<DType> {
        self.store
            .files
            .iter()
            .flat_map(|f| f.tensors.values())
            .filter_map(|i| candle_dtype(i.dtype))
            .find(|d| d.is_float())
    }

    /// A view one level down: `w.pp("down_blocks").pp(0)` reads `down_blocks.0.*`.
    pub fn pp(&self, name: impl Display) -> Weights {
        let prefix = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.prefix, name)
        };
        Weights { prefix, ..self.clone() }
    }

    /// The same weights produced in another dtype (e.g. an f32 VAE inside an f16 model).
    pub fn with_dtype(&self, dtype: DType) -> Weights {
        Weights { dtype, ..self.clone() }
    }

    fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.prefix, name)
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.store.index.contains_key(&self.full_name(name))
    }

    /// A tensor whose shape must be `shape` (what the config implies).
    pub fn get(&self, name: &str, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        let full = self.full_name(name);
        let tensor = self.load(&full, Some(&shape))?;
        Ok(tensor)
    }

    /// A tensor of whatever shape the file holds.
    pub fn get_unchecked(&self, name: &str) -> Result<Tensor> {
        self.load(&self.full_name(name), None)
    }

    fn load(&self, full: &str, expected: Option<&Shape>) -> Result<Tensor> {
        let store = &self.store;
        let Some(&file_idx) = store.index.get(full) else {
            let shape = expected
                .map(|s| format!(" of shape {:?}", s.dims()))
                .unwrap_or_default();
            return Err(Error::weights(
                &store.display_path,
                format!("missing tensor `{full}`{shape}; the weights do not match the component's config.json"),
            ));
        };
        let file = &store.files[file_idx];
        let info = &file.tensors[full];
        if let Some(expected) = expected
            && info.shape.as_slice() != expected.dims()
        {
            return Err(Error::weights(
                &file.path,
                format!(
                    "tensor `{full}` has shape {:?} but the config implies {:?}",
                    info.shape,
                    expected.dims()
                ),
            ));
        }
        let dtype = candle_dtype(info.dtype).ok_or_else(|| {
            Error::weights(
                &file.path,
                format!("tensor `{full}` has unsupported dtype {:?}", info.dtype),
            )
        })?;
        let (start, end) = info.data_offsets;
        let bytes = &file.mmap[file.data_start + start..file.data_start + end];
        let expected_len = info.shape.iter().product::<usize>() * dtype.size_in_bytes();
        if bytes.len() != expected_len {
            return Err(Error::weights(
                &file.path,
                format!(
                    "tensor `{full}` holds {} bytes, its shape needs {expected_len}",
                    bytes.len()
                ),
            ));
        }
        let tensor = Tensor::from_raw_buffer(bytes, dtype, &info.shape, &Device::Cpu)?;
        release_pages(&file.mmap, file.data_start + start, end - start);
        let tensor = if dtype == self.dtype {
            tensor
        } else {
            tensor.to_dtype(self.dtype)?
        };
        Ok(tensor.to_device(&self.device)?)
    }
}

/// Tells the kernel we are done with a tensor's bytes in the map: they were just copied, and
/// keeping the file pages resident would count every weight twice in our memory while a
/// model loads. The pages stay in the page cache, so a later read is cheap.
fn release_pages(mmap: &Mmap, offset: usize, len: usize) {
    #[cfg(unix)]
    {
        // SAFETY: the map is read-only and file-backed, and no slice into this range outlives
        // this call (the tensor above owns a copy), so dropping the pages only means they are
        // read from the page cache again if touched.
        let _ = unsafe { mmap.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
    }
    #[cfg(not(unix))]
    let _ = (mmap, offset, len);
}
