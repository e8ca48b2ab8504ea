//! Reading a tokenizer folder: the vocabulary, the merges, and the special tokens the folder's
//! config files declare, resolved the way transformers 5 resolves them.
//!
//! Two layouts exist in the wild: the hub repos' `vocab.json` + `merges.txt` (with
//! `tokenizer_config.json` and/or `special_tokens_map.json`), and the `tokenizer.json` that
//! transformers 5 writes. When both are present transformers builds from `tokenizer.json`, so
//! do we.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

const VOCAB: &str = "vocab.json";
const MERGES: &str = "merges.txt";
const TOKENIZER_JSON: &str = "tokenizer.json";
const CONFIG: &str = "tokenizer_config.json";
const SPECIAL_MAP: &str = "special_tokens_map.json";

/// The named special tokens in the order transformers adds them (`SPECIAL_TOKENS_ATTRIBUTES`).
/// The order matters: when two names share one content, the last distinct spelling decides
/// whether that token is matched before or after normalisation.
const SPECIAL_KEYS: [&str; 7] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];
const BOS: usize = 0;
const EOS: usize = 1;
const UNK: usize = 2;
const PAD: usize = 4;

/// CLIPTokenizer's constructor defaults, used when no file names a token.
const DEFAULT_BOS: &str = "<|startoftext|>";
const DEFAULT_EOS: &str = "<|endoftext|>";
const DEFAULT_UNK: &str = "<|endoftext|>";
const DEFAULT_PAD: &str = "<|endoftext|>";

/// What every SD text encoder takes; used when the config does not say.
const DEFAULT_MAX_LENGTH: usize = 77;
/// transformers writes a huge sentinel (1e30) for "no limit"; anything above this is that.
const UNSET_MAX_LENGTH: u64 = 1_000_000;

/// An added token as transformers' `AddedToken` holds it. Equality over every field is what
/// transformers uses to drop repeated special-token spellings, so it is derived, not custom.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct AddedToken {
    pub content: String,
    pub single_word: bool,
    pub lstrip: bool,
    pub rstrip: bool,
    /// `None` when the file leaves it out: `tokenizers` then uses `!special`.
    pub normalized: Option<bool>,
    pub special: bool,
}

impl AddedToken {
    /// A token given as a bare string: transformers makes it `AddedToken(s, special=True)`.
    fn plain_special(content: &str) -> Self {
        AddedToken {
            content: content.to_owned(),
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: None,
            special: true,
        }
    }

    /// Whether the token is matched in the normalised text (lower-cased, NFC) rather than the
    /// raw prompt. This is what makes `<|ENDOFTEXT|>` an eos in some hub folders.
    pub fn is_normalized(&self) -> bool {
        self.normalized.unwrap_or(!self.special)
    }
}

/// A special token as a config spells it. A bare string and an object never compare equal
/// (transformers compares `str` with `AddedToken`), which decides which spelling wins.
#[derive(Clone, Debug, PartialEq)]
enum TokenSpec {
    Plain(String),
    Object(AddedToken),
}

impl TokenSpec {
    fn content(&self) -> &str {
        match self {
            TokenSpec::Plain(s) => s,
            TokenSpec::Object(t) => &t.content,
        }
    }

    /// The token transformers registers for a named special token: always special.
    fn into_added(self) -> AddedToken {
        match self {
            TokenSpec::Plain(s) => AddedToken::plain_special(&s),
            TokenSpec::Object(t) => AddedToken { special: true, ..t },
        }
    }
}

/// Everything a folder says, before ids are assigned.
pub(super) struct Loaded {
    /// The file the vocabulary and merges came from, for error messages.
    pub model_file: PathBuf,
    pub vocab: HashMap<String, u32>,
    pub merges: Vec<(String, String)>,
    /// The BPE model's unknown token (looked up in the model vocabulary only).
    pub unk: Option<String>,
    /// Added tokens in the order transformers adds them; for a repeated content the last wins.
    pub added: Vec<AddedToken>,
    pub bos: String,
    pub eos: String,
    pub pad: String,
    pub max_length: usize,
}

/// Reads a tokenizer folder in either layout.
pub(super) fn load(dir: &Path) -> Result<Loaded> {
    if !dir.exists() {
        return Err(Error::tokenizer(dir, "tokenizer folder not found"));
    }
    if !dir.is_dir() {
        return Err(Error::tokenizer(dir, "not a folder (expected a tokenizer folder)"));
    }
    let model = read_model(dir)?;
    let config = read_json_object(&dir.join(CONFIG))?;
    let special_map = read_json_object(&dir.join(SPECIAL_MAP))?;
    let specials = resolve_specials(dir, config.as_ref(), special_map.as_ref())?;
    let decoder = match &config {
        Some(map) => read_added_tokens_decoder(&dir.join(CONFIG), map)?,
        None => Vec::new(),
    };
    let max_length = read_max_length(&dir.join(CONFIG), config.as_ref())?;

    let added = order_added_tokens(&model.added, decoder, &specials);
    let content = |i: usize, default: &str| {
        specials.named[i]
            .as_ref()
            .map_or_else(|| default.to_owned(), |t| t.content().to_owned())
    };
    let unk = match model.unk {
        Some(unk) => Some(unk),
        None => Some(content(UNK, DEFAULT_UNK)),
    };
    Ok(Loaded {
        model_file: model.file,
        vocab: model.vocab,
        merges: model.merges,
        unk,
        added,
        bos: content(BOS, DEFAULT_BOS),
        eos: content(EOS, DEFAULT_EOS),
        pad: content(PAD, DEFAULT_PAD),
        max_length,
    })
}

/// The BPE model part of a folder.
struct Model {
    file: PathBuf,
    vocab: HashMap<String, u32>,
    merges: Vec<(String, String)>,
    /// `tokenizer.json`'s own added tokens (empty for the vocab + merges layout).
    added: Vec<AddedToken>,
    unk: Option<String>,
}

fn read_model(dir: &Path) -> Result<Model> {
    let json = dir.join(TOKENIZER_JSON);
    if json.is_file() {
        return read_tokenizer_json(&json);
    }
    let (vocab, merges) = (dir.join(VOCAB), dir.join(MERGES));
    match (vocab.is_file(), merges.is_file()) {
        (true, true) => Ok(Model {
            vocab: read_vocab(&vocab)?,
            merges: read_merges(&merges)?,
            file: merges,
            added: Vec::new(),
            unk: None,
        }),
        (true, false) => Err(Error::tokenizer(
            merges,
            "missing (vocab.json needs merges.txt beside it)",
        )),
        (false, true) => Err(Error::tokenizer(
            vocab,
            "missing (merges.txt needs vocab.json beside it)",
        )),
        (false, false) => Err(Error::tokenizer(
            dir,
            "no tokenizer files: expected vocab.json + merges.txt or tokenizer.json",
        )),
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

fn read_vocab(path: &Path) -> Result<HashMap<String, u32>> {
    let vocab: HashMap<String, u32> = serde_json::from_str(&read_text(path)?)
        .map_err(|e| Error::tokenizer(path, format!("not a vocabulary (a JSON object of token to id): {e}")))?;
    if vocab.is_empty() {
        return Err(Error::tokenizer(path, "the vocabulary is empty"));
    }
    Ok(vocab)
}

/// `merges.txt`: an optional `#version` header, then one `left right` pair per line, best first.
fn read_merges(path: &Path) -> Result<Vec<(String, String)>> {
    let text = read_text(path)?;
    let mut merges = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.starts_with("#version") || line.trim().is_empty() {
            continue;
        }
        let pair = split_merge(line).ok_or_else(|| {
            Error::tokenizer(
                path,
                format!("line {}: expected two tokens separated by one space", index + 1),
            )
        })?;
        merges.push(pair);
    }
    Ok(merges)
}

fn split_merge(line: &str) -> Option<(String, String)> {
    let (left, right) = line.split_once(' ')?;
    if left.is_empty() || right.is_empty() || right.contains(' ') {
        return None;
    }
    Some((left.to_owned(), right.to_owned()))
}

#[derive(Deserialize)]
struct TokenizerJson {
    model: JsonModel,
    #[serde(default)]
    added_tokens: Vec<JsonAddedToken>,
}

#[derive(Deserialize)]
struct JsonModel {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    vocab: HashMap<String, u32>,
    #[serde(default)]
    merges: Vec<JsonMerge>,
    #[serde(default)]
    unk_token: Option<String>,
    #[serde(default)]
    end_of_word_suffix: Option<String>,
}

/// Older `tokenizers` wrote merges as `"a b"`, newer ones as `["a", "b"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonMerge {
    Joined(String),
    Pair(String, String),
}

#[derive(Deserialize)]
struct JsonAddedToken {
    content: String,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    #[serde(default)]
    normalized: Option<bool>,
    #[serde(default)]
    special: bool,
}

fn read_tokenizer_json(path: &Path) -> Result<Model> {
    let parsed: TokenizerJson = serde_json::from_str(&read_text(path)?)
        .map_err(|e| Error::tokenizer(path, format!("not a tokenizers file: {e}")))?;
    let model = parsed.model;
    if model.kind.as_deref().is_some_and(|k| k != "BPE") {
        return Err(Error::tokenizer(path, "model.type is not BPE; not a CLIP tokenizer"));
    }
    if model.end_of_word_suffix.as_deref().is_some_and(|s| s != "</w>") {
        return Err(Error::tokenizer(
            path,
            "model.end_of_word_suffix is not `</w>`; not a CLIP tokenizer",
        ));
    }
    if model.vocab.is_empty() {
        return Err(Error::tokenizer(path, "model.vocab is empty"));
    }
    let mut merges = Vec::with_capacity(model.merges.len());
    for (index, merge) in model.merges.into_iter().enumerate() {
        let pair = match merge {
            JsonMerge::Pair(a, b) => Some((a, b)),
            JsonMerge::Joined(s) => split_merge(&s),
        };
        merges.push(pair.ok_or_else(|| {
            Error::tokenizer(
                path,
                format!("model.merges[{index}]: expected two tokens separated by one space"),
            )
        })?);
    }
    let added = parsed
        .added_tokens
        .into_iter()
        .map(|t| AddedToken {
            content: t.content,
            single_word: t.single_word,
            lstrip: t.lstrip,
            rstrip: t.rstrip,
            normalized: t.normalized,
            special: t.special,
        })
        .collect();
    Ok(Model {
        file: path.to_owned(),
        vocab: model.vocab,
        merges,
        added,
        unk: model.unk_token,
    })
}

/// A small JSON config file, or `None` when the folder does not have it.
fn read_json_object(path: &Path) -> Result<Option<Map<String, Value>>> {
    if !path.is_file() {
        return Ok(None);
    }
    match serde_json::from_str::<Value>(&read_text(path)?) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(Error::tokenizer(path, "expected a JSON object")),
        Err(e) => Err(Error::tokenizer(path, format!("invalid JSON: {e}"))),
    }
}

/// The special tokens after transformers' precedence rules.
struct Specials {
    /// Indexed like `SPECIAL_KEYS`.
    named: [Option<TokenSpec>; 7],
    extra: Vec<TokenSpec>,
}

/// `tokenizer_config.json` first; `special_tokens_map.json` overrides it key by key, except
/// when the config carries `added_tokens_decoder` (transformers then ignores the map file).
fn resolve_specials(
    dir: &Path,
    config: Option<&Map<String, Value>>,
    special_map: Option<&Map<String, Value>>,
) -> Result<Specials> {
    let mut specials = Specials {
        named: Default::default(),
        extra: Vec::new(),
    };
    if let Some(config) = config {
        apply_specials(&mut specials, &dir.join(CONFIG), config, false)?;
    }
    let map_applies = config.is_none_or(|c| !c.contains_key("added_tokens_decoder"));
    if let (Some(map), true) = (special_map, map_applies) {
        apply_specials(&mut specials, &dir.join(SPECIAL_MAP), map, true)?;
    }
    Ok(specials)
}

/// Reads the named special tokens a file declares. In `special_tokens_map.json` objects are
/// forced special (transformers builds them with `special=True`); in the config they keep
/// their own flag. `null` means "not set", so CLIPTokenizer's default applies.
fn apply_specials(specials: &mut Specials, path: &Path, map: &Map<String, Value>, forced: bool) -> Result<()> {
    for (slot, key) in specials.named.iter_mut().zip(SPECIAL_KEYS) {
        if let Some(value) = map.get(key) {
            *slot = parse_spec(value, forced, path, key)?;
        }
    }
    for key in ["additional_special_tokens", "extra_special_tokens"] {
        if let Some(Value::Array(items)) = map.get(key) {
            for item in items {
                if let Some(spec) = parse_spec(item, forced, path, key)? {
                    specials.extra.push(spec);
                }
            }
        }
    }
    Ok(())
}

fn parse_spec(value: &Value, forced_special: bool, path: &Path, key: &str) -> Result<Option<TokenSpec>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(TokenSpec::Plain(s.clone()))),
        Value::Object(obj) => Ok(Some(TokenSpec::Object(parse_token_object(
            obj,
            forced_special,
            path,
            key,
        )?))),
        _ => Err(Error::tokenizer(
            path,
            format!("`{key}` must be a string or a token object"),
        )),
    }
}

/// An `AddedToken` object: `{"content": "!", "normalized": false, ...}` (the `__type` tag
/// transformers 4 wrote in configs is accepted and ignored).
fn parse_token_object(obj: &Map<String, Value>, forced_special: bool, path: &Path, key: &str) -> Result<AddedToken> {
    let content = obj
        .get("content")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::tokenizer(path, format!("`{key}`: token object without a string `content`")))?;
    let flag = |name: &str| obj.get(name).and_then(Value::as_bool);
    Ok(AddedToken {
        content: content.to_owned(),
        single_word: flag("single_word").unwrap_or(false),
        lstrip: flag("lstrip").unwrap_or(false),
        rstrip: flag("rstrip").unwrap_or(false),
        normalized: flag("normalized"),
        special: forced_special || flag("special").unwrap_or(false),
    })
}

/// `added_tokens_decoder` (transformers ≥ 4.34 configs): `{"49407": {token object}, ...}`, in id
/// order as transformers sorts them. The ids themselves are not used: the backend assigns ids
/// by content, and a CLIP vocabulary already holds every such token.
fn read_added_tokens_decoder(path: &Path, config: &Map<String, Value>) -> Result<Vec<AddedToken>> {
    let Some(decoder) = config.get("added_tokens_decoder") else {
        return Ok(Vec::new());
    };
    let Value::Object(entries) = decoder else {
        return Err(Error::tokenizer(path, "`added_tokens_decoder` must be an object"));
    };
    let mut tokens = Vec::with_capacity(entries.len());
    for (id, value) in entries {
        let id: u64 = id
            .parse()
            .map_err(|_| Error::tokenizer(path, format!("added_tokens_decoder: `{id}` is not a token id")))?;
        let Value::Object(obj) = value else {
            return Err(Error::tokenizer(
                path,
                format!("added_tokens_decoder[{id}] must be a token object"),
            ));
        };
        tokens.push((id, parse_token_object(obj, false, path, "added_tokens_decoder")?));
    }
    tokens.sort_by_key(|(id, _)| *id);
    Ok(tokens.into_iter().map(|(_, t)| t).collect())
}

fn read_max_length(path: &Path, config: Option<&Map<String, Value>>) -> Result<usize> {
    let Some(value) = config.and_then(|c| c.get("model_max_length")) else {
        return Ok(DEFAULT_MAX_LENGTH);
    };
    match value.as_u64() {
        Some(n) if n > UNSET_MAX_LENGTH => Ok(DEFAULT_MAX_LENGTH),
        Some(n) if n >= 2 => usize::try_from(n).map_err(|_| Error::tokenizer(path, "model_max_length is too large")),
        Some(_) => Err(Error::tokenizer(
            path,
            "model_max_length must be at least 2 (bos and eos)",
        )),
        None if value.as_f64().is_some_and(|f| f > UNSET_MAX_LENGTH as f64) => Ok(DEFAULT_MAX_LENGTH),
        None => Err(Error::tokenizer(path, "model_max_length must be a whole number")),
    }
}

/// The order transformers 5 registers added tokens in, which decides (last wins) how each
/// content is matched:
/// 1. `tokenizer.json`'s own `added_tokens`;
/// 2. the config's `added_tokens_decoder`;
/// 3. the named special tokens (bos, eos, unk, sep, pad, cls, mask) and extras, skipping a
///    content already registered by 1 or 2 and any spelling equal to one already queued.
fn order_added_tokens(from_json: &[AddedToken], decoder: Vec<AddedToken>, specials: &Specials) -> Vec<AddedToken> {
    let mut added: Vec<AddedToken> = from_json.to_vec();
    added.extend(decoder);
    let registered: Vec<String> = added.iter().map(|t| t.content.clone()).collect();

    let defaults = [
        Some(TokenSpec::Plain(DEFAULT_BOS.to_owned())),
        Some(TokenSpec::Plain(DEFAULT_EOS.to_owned())),
        Some(TokenSpec::Plain(DEFAULT_UNK.to_owned())),
        None,
        Some(TokenSpec::Plain(DEFAULT_PAD.to_owned())),
        None,
        None,
    ];
    let named = specials
        .named
        .iter()
        .zip(defaults)
        .filter_map(|(given, default)| given.clone().or(default));
    let mut queued: Vec<TokenSpec> = Vec::new();
    for spec in named.chain(specials.extra.iter().cloned()) {
        if spec.content().is_empty() || registered.iter().any(|c| c == spec.content()) || queued.contains(&spec) {
            continue;
        }
        queued.push(spec);
    }
    added.extend(queued.into_iter().map(TokenSpec::into_added));
    added
}
