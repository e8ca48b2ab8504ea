//! Memory-mapped safetensors weights for one model component.
//!
//! A component folder (`unet/`, `vae/`, `text_encoder/`, …) holds its weights as one
//! `*.safetensors` file, an `.fp16.safetensors` variant, or shards listed in a
//! `*.safetensors.index.json`. Files are memory-mapped; each tensor is copied out once, in the
//! compute dtype, when a module asks for it, so loading never holds two full copies.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    /// For a file in another layout (a single-file checkpoint): the names modules ask for →
    /// where each lives in the file. Empty: names are the file's own.
    mapping: HashMap<String, Mapped>,
    /// The tensors handed to modules through a tracking view ([`Weights::tracked`]), by full
    /// name: what a LoRA patches in place and later restores from the file.
    registry: Mutex<HashMap<String, Registered>>,
}

/// A tensor a module holds, as the store handed it out: writing into it (in place) changes
/// the module's weight. The named tensor is `rows` rows of `tensor` from `row` on, along the
/// first dimension (all of it, or its place inside a fused projection such as CLIP's q/k/v).
#[derive(Clone, Debug)]
pub struct Registered {
    pub tensor: Tensor,
    pub row: usize,
    pub rows: usize,
}

impl Registered {
    /// The named tensor's own shape.
    pub fn shape(&self) -> Vec<usize> {
        let mut dims = self.tensor.dims().to_vec();
        if let Some(first) = dims.first_mut() {
            *first = self.rows;
        }
        dims
    }
}

/// Where a tensor a module asks for lives in a file stored in another layout, and how its
/// bytes become that tensor. Nothing is converted ahead of time: each tensor is read once,
/// when asked for, as a plain one is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// The tensor as stored, under another name.
    Same(String),
    /// The same bytes under another shape (1×1 convolution weights read as a linear layer's).
    Reshaped(String, Vec<usize>),
    /// Rows `start..start + len` of the first dimension (q, k or v of a fused projection).
    Rows { name: String, start: usize, len: usize },
    /// The 2-D transpose (OpenCLIP stores its text projection as [in, out]).
    Transposed(String),
}

impl Mapped {
    /// The tensor's name in the file.
    pub fn source(&self) -> &str {
        match self {
            Mapped::Same(n) | Mapped::Reshaped(n, _) | Mapped::Transposed(n) => n,
            Mapped::Rows { name, .. } => name,
        }
    }
}

/// A view of a component's weights under a name prefix, producing tensors in one dtype on
/// one device (candle's VarBuilder idea, with errors that name the file).
#[derive(Clone)]
pub struct Weights {
    store: Arc<Store>,
    prefix: String,
    dtype: DType,
    device: Device,
    /// Whether tensors read through this view are recorded in the store's registry.
    track: bool,
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
        let path = shard_path(index, dir, name)?;
        if !files.contains(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Resolves one `weight_map` entry to a plain file inside the component folder.
///
/// The index comes from a downloaded model, so it is untrusted: an absolute path or `..` would
/// read any file the user can (`/etc/passwd`), a symlink could do the same, and a FIFO or a
/// device would hang or never end when mapped. Only a relative name whose resolved target is
/// a regular file under the folder is accepted.
fn shard_path(index: &Path, dir: &Path, name: &str) -> Result<PathBuf> {
    use std::path::Component;
    let refuse = |why: &str| {
        Error::weights(
            index,
            format!("shard `{name}` {why}; shards must be files inside the component folder"),
        )
    };
    let relative = Path::new(name);
    if name.is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(refuse("is not a plain relative file name"));
    }
    let path = dir.join(relative);
    // Canonicalising resolves every symlink, so the prefix check sees where the file really is.
    let real_dir = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
    let real = path.canonicalize().map_err(|e| Error::io(&path, e))?;
    if !real.starts_with(&real_dir) {
        return Err(refuse("resolves outside the component folder"));
    }
    // Checked before anything opens it: opening a FIFO blocks until a writer appears.
    let meta = std::fs::metadata(&real).map_err(|e| Error::io(&path, e))?;
    if !meta.is_file() {
        return Err(refuse("is not a regular file"));
    }
    Ok(path)
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
    // Compare what the header promises with the file's size before anything else, so an
    // interrupted download is called that instead of a parser's complaint about the JSON.
    let shorter = |missing: u64| {
        Error::weights(
            path,
            format!("truncated: the file is {missing} bytes shorter than its header says (interrupted download?)"),
        )
    };
    let file_len = mmap.len() as u64;
    let header_len = u64::from_le_bytes(mmap[..8].try_into().expect("8 bytes"));
    let header_end = header_len.saturating_add(8);
    if header_end > file_len {
        return Err(shorter(header_end - file_len));
    }
    // Fits in usize: it is at most the mapped length.
    let data_start = header_end as usize;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&mmap[..]).or_else(|e| match e {
        // read_metadata also insists the data fills the file exactly; a short file is
        // reported below with how much is missing. Parse the header alone (the same
        // validation of offsets and shapes runs in `Metadata`'s deserialiser).
        safetensors::SafeTensorError::MetadataIncompleteBuffer => {
            serde_json::from_slice::<safetensors::tensor::Metadata>(&mmap[8..data_start])
                .map(|m| (data_start - 8, m))
                .map_err(|e| corrupt(e.to_string()))
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
        return Err(shorter((data_len - available) as u64));
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
                mapping: HashMap::new(),
                registry: Mutex::new(HashMap::new()),
            }),
            prefix: String::new(),
            dtype,
            device: device.clone(),
            track: false,
        })
    }

    /// One file read through `mapping` (module names → names in the file): a single-file
    /// checkpoint seen in the diffusers layout. Only the mapped names are visible.
    pub fn mapped(path: &Path, mapping: HashMap<String, Mapped>, dtype: DType, device: &Device) -> Result<Weights> {
        let mut w = Self::from_files(&[path.to_path_buf()], dtype, device)?;
        let store = Arc::get_mut(&mut w.store).expect("not shared yet");
        if let Some((name, m)) = mapping.iter().find(|(_, m)| !store.index.contains_key(m.source())) {
            return Err(Error::weights(
                path,
                format!("tensor `{}` (read as `{name}`) is not in the file", m.source()),
            ));
        }
        store.mapping = mapping;
        Ok(w)
    }

    /// The names of the file's own tensors (no mapping applied).
    pub fn stored_names(&self) -> impl Iterator<Item = &str> {
        self.store.index.keys().map(String::as_str)
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

    /// The same view, recording every tensor it hands out so that it can be patched in place
    /// later (LoRA). Only for modules that keep the tensors they read as they are: a tensor
    /// read only to look at, or replaced by a derived copy, would be kept alive by the record.
    pub fn tracked(&self) -> Weights {
        Weights {
            track: true,
            ..self.clone()
        }
    }

    /// The tensor a module holds under `name` (relative to this view), if it was read through
    /// a tracking view.
    pub fn registered(&self, name: &str) -> Option<Registered> {
        let registry = self.store.registry.lock().unwrap_or_else(|e| e.into_inner());
        registry.get(&self.full_name(name)).cloned()
    }

    /// The names (relative to this view) of every tensor recorded under it.
    pub fn registered_names(&self) -> Vec<String> {
        let registry = self.store.registry.lock().unwrap_or_else(|e| e.into_inner());
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}.", self.prefix)
        };
        let mut names: Vec<String> = registry
            .keys()
            .filter_map(|n| n.strip_prefix(&strip).map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// Records that the tensors `names` (relative to this view) now live inside `fused`, one
    /// after another along its first dimension, `rows[i]` rows each; the separate copies the
    /// module read them as are no longer referenced.
    pub fn register_fused(&self, names: &[&str], rows: &[usize], fused: &Tensor) {
        if !self.track {
            return;
        }
        let mut registry = self.store.registry.lock().unwrap_or_else(|e| e.into_inner());
        let mut row = 0;
        for (name, len) in names.iter().zip(rows) {
            registry.insert(
                self.full_name(name),
                Registered {
                    tensor: fused.clone(),
                    row,
                    rows: *len,
                },
            );
            row += len;
        }
    }

    /// The tensor `name` as the file holds it, read again (for undoing an in-place patch);
    /// not recorded.
    pub fn original(&self, name: &str) -> Result<Tensor> {
        self.load(&self.full_name(name), None)
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
        let full = self.full_name(name);
        if self.store.mapping.is_empty() {
            self.store.index.contains_key(&full)
        } else {
            self.store.mapping.contains_key(&full)
        }
    }

    /// A tensor whose shape must be `shape` (what the config implies).
    pub fn get(&self, name: &str, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        let full = self.full_name(name);
        let tensor = self.load(&full, Some(&shape))?;
        self.record(full, &tensor);
        Ok(tensor)
    }

    /// A tensor of whatever shape the file holds.
    pub fn get_unchecked(&self, name: &str) -> Result<Tensor> {
        let full = self.full_name(name);
        let tensor = self.load(&full, None)?;
        self.record(full, &tensor);
        Ok(tensor)
    }

    fn record(&self, full: String, tensor: &Tensor) {
        if self.track {
            let mut registry = self.store.registry.lock().unwrap_or_else(|e| e.into_inner());
            registry.insert(
                full,
                Registered {
                    tensor: tensor.clone(),
                    row: 0,
                    rows: tensor.dims().first().copied().unwrap_or(0),
                },
            );
        }
    }

    fn load(&self, full: &str, expected: Option<&Shape>) -> Result<Tensor> {
        let store = &self.store;
        let mapped = store.mapping.get(full);
        let stored = match mapped {
            Some(m) => Some(m.source()),
            None if store.mapping.is_empty() => Some(full),
            None => None,
        };
        let Some((stored, &file_idx)) = stored.and_then(|n| Some((n, store.index.get(n)?))) else {
            let shape = expected
                .map(|s| format!(" of shape {:?}", s.dims()))
                .unwrap_or_default();
            return Err(Error::weights(
                &store.display_path,
                format!("missing tensor `{full}`{shape}; the weights do not match the component's config.json"),
            ));
        };
        let file = &store.files[file_idx];
        let info = &file.tensors[stored];
        let dtype = candle_dtype(info.dtype).ok_or_else(|| {
            Error::weights(
                &file.path,
                format!("tensor `{stored}` has unsupported dtype {:?}", info.dtype),
            )
        })?;
        let (start, end) = info.data_offsets;
        let expected_len = info.shape.iter().product::<usize>() * dtype.size_in_bytes();
        if end - start != expected_len {
            return Err(Error::weights(
                &file.path,
                format!(
                    "tensor `{stored}` holds {} bytes, its shape needs {expected_len}",
                    end - start
                ),
            ));
        }
        // The part of the stored bytes this tensor is, and its shape as the module sees it.
        let bad_view = |what: String| Error::weights(&file.path, format!("tensor `{stored}` {what}"));
        let (range, shape, transpose) = match mapped {
            None | Some(Mapped::Same(_)) => (start..end, info.shape.clone(), false),
            Some(Mapped::Reshaped(_, shape)) => {
                if shape.iter().product::<usize>() != info.shape.iter().product::<usize>() {
                    return Err(bad_view(format!(
                        "of shape {:?} cannot be read as {shape:?}",
                        info.shape
                    )));
                }
                (start..end, shape.clone(), false)
            }
            Some(Mapped::Rows { start: row, len, .. }) => {
                let rows = info.shape.first().copied().unwrap_or(0);
                if row + len > rows {
                    return Err(bad_view(format!(
                        "of shape {:?} has no rows {row}..{}",
                        info.shape,
                        row + len
                    )));
                }
                let row_bytes = expected_len / rows.max(1);
                let mut shape = info.shape.clone();
                shape[0] = *len;
                (start + row * row_bytes..start + (row + len) * row_bytes, shape, false)
            }
            Some(Mapped::Transposed(_)) => match info.shape.as_slice() {
                &[a, b] => (start..end, vec![b, a], true),
                other => return Err(bad_view(format!("of shape {other:?} is not a matrix"))),
            },
        };
        if let Some(expected) = expected
            && shape.as_slice() != expected.dims()
        {
            return Err(Error::weights(
                &file.path,
                format!(
                    "tensor `{full}` has shape {:?} but the config implies {:?}",
                    shape,
                    expected.dims()
                ),
            ));
        }
        let bytes = &file.mmap[file.data_start + range.start..file.data_start + range.end];
        let tensor = if transpose {
            Tensor::from_raw_buffer(bytes, dtype, &info.shape, &Device::Cpu)?
                .t()?
                .contiguous()?
        } else {
            Tensor::from_raw_buffer(bytes, dtype, &shape, &Device::Cpu)?
        };
        release_pages(&file.mmap, file.data_start + range.start, range.len());
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

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sd1-tiny/vae/diffusion_pytorch_model.safetensors"
    );

    fn one_line(e: &Error) -> String {
        let text = e.to_string();
        assert!(!text.contains('\n'), "not one line: {text}");
        text
    }

    #[test]
    fn a_cut_weight_file_says_how_much_is_missing() {
        let bytes = std::fs::read(FIXTURE).unwrap();
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        // The folder name must not contain the word the assertions look for.
        let tmp = tempfile::Builder::new().prefix("cut-").tempdir().unwrap();
        let path = tmp.path().join("model.safetensors");
        // Inside the 8-byte length, inside the JSON header, inside the tensor data.
        for (cut, expect) in [
            (4, "only 4 bytes".to_string()),
            (
                8 + header_len / 2,
                format!(
                    "{} bytes shorter",
                    // What the header promises (8 + its length) less what is left.
                    header_len - header_len / 2
                ),
            ),
            (bytes.len() - 1000, "1000 bytes shorter".to_string()),
        ] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let Err(e) = map_file(&path) else {
                panic!("cut at {cut} was accepted")
            };
            let text = one_line(&e);
            assert!(text.contains(&path.display().to_string()), "cut at {cut}: {text}");
            assert!(text.contains(&expect), "cut at {cut}: {text}");
        }
        // The whole file still maps.
        std::fs::write(&path, &bytes).unwrap();
        assert!(map_file(&path).is_ok());
    }

    /// A component folder with one real shard and an index naming `entry` beside it.
    fn folder_with_index(entry: &str) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("unet");
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(FIXTURE, dir.join("a.safetensors")).unwrap();
        let index = dir.join("diffusion_pytorch_model.safetensors.index.json");
        let json = serde_json::json!({"weight_map": {"x": "a.safetensors", "y": entry}});
        std::fs::write(&index, json.to_string()).unwrap();
        (tmp, index)
    }

    fn refused(entry: &str, why: &str) {
        let (_tmp, index) = folder_with_index(entry);
        let Err(e) = shards_from_index(&index) else {
            panic!("{entry} was accepted")
        };
        let text = one_line(&e);
        assert!(text.contains(why), "{entry}: {text}");
        assert!(text.contains("index.json"), "{entry}: {text}");
    }

    #[test]
    fn a_shard_index_may_name_only_files_in_its_folder() {
        refused("/etc/passwd", "not a plain relative file name");
        refused("../x.safetensors", "not a plain relative file name");
        refused("sub/../../x.safetensors", "not a plain relative file name");
        // A plain shard beside the index is fine.
        let (_tmp, index) = folder_with_index("a.safetensors");
        assert_eq!(shards_from_index(&index).unwrap().len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_shard_symlink_out_of_the_folder_is_refused() {
        let (tmp, index) = folder_with_index("b.safetensors");
        let outside = tmp.path().join("b.safetensors");
        std::fs::copy(FIXTURE, &outside).unwrap();
        std::os::unix::fs::symlink(&outside, index.parent().unwrap().join("b.safetensors")).unwrap();
        let Err(e) = shards_from_index(&index) else {
            panic!("symlink out was accepted")
        };
        assert!(one_line(&e).contains("outside the component folder"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_shard_fifo_is_refused_without_blocking() {
        let (_tmp, index) = folder_with_index("fifo.safetensors");
        let fifo = index.parent().unwrap().join("fifo.safetensors");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file system entry.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Opening the FIFO would block this test forever; the metadata check must come first.
        let Err(e) = shards_from_index(&index) else {
            panic!("FIFO was accepted")
        };
        assert!(one_line(&e).contains("not a regular file"), "{e}");
    }
}
