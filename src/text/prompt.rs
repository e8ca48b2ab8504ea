//! Prompt syntax: AUTOMATIC1111's emphasis, `BREAK` and 75-token chunks, or diffusers' plain
//! text — tokenizer level, no model.
//!
//! A1111 (`modules/prompt_parser.py` `parse_prompt_attention`, `modules/sd_hijack_clip.py`
//! `tokenize_line`), re-implemented from its documented behaviour:
//!
//! - `(text)` multiplies the weight of `text` by 1.1, `[text]` divides it by 1.1,
//!   `(text:1.3)` multiplies by 1.3 (any `[+-]?[.0-9]+` number, negative and zero included,
//!   whitespace allowed around it); nesting multiplies;
//!   brackets still open at the end close there; `\(` `\)` `\[` `\]` `\\` are the characters
//!   themselves (and a lone `\` vanishes); neighbouring pieces of equal weight merge.
//! - `BREAK` (a whole word, upper case, with the whitespace around it) ends the chunk. It is
//!   kept as the piece `("BREAK", -1)`, so — as in A1111 — a `BREAK` inside brackets gets its
//!   weight multiplied and is then the literal word.
//! - Each piece is tokenized on its own; tokens fill chunks of 75; when a chunk is full and a
//!   comma lies at most 20 tokens back, the tokens after the comma move to the next chunk.
//!   Every chunk is `start + 75 tokens (end-padded) + end`, weight 1 for the specials; after
//!   the first end token the ids become the tokenizer's pad id (`!` = 0 for OpenCLIP-style
//!   tokenizers, as A1111 pads SD 2.x and SDXL's second encoder; the end token for CLIP-L).
//! - The token count is A1111's: 75 for every chunk but the last, plus the last one's tokens;
//!   the counter's limit is that count rounded up to a multiple of 75 (`82/150`).
//!
//! `Plain` is what diffusers does: the whole text is one piece, brackets are text, and the
//! encoder sees the first 75 tokens.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::tokenizer::ClipTokenizer;
use crate::error::{Error, Result};

/// Content tokens per chunk (A1111's `chunk_length`).
pub const CHUNK_TOKENS: usize = 75;
/// Ids the text encoder sees per chunk: start, 75 tokens, end.
pub const CHUNK_IDS: usize = CHUNK_TOKENS + 2;
/// The most chunks a prompt may have (9,600 tokens: about 20,000 characters of English, 4,000
/// of Chinese). A1111 has no limit; beyond this the cross-attention context alone makes a CPU
/// run take hours and gigabytes, so the run is refused with a one-line error instead.
pub const MAX_CHUNKS: usize = 128;
/// How far back (in tokens) a full chunk looks for a comma to break at (A1111's
/// `comma_padding_backtrack` default).
pub const COMMA_BACKTRACK: usize = 20;

/// How a prompt's text is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptSyntax {
    /// AUTOMATIC1111's: emphasis, `BREAK`, any length in 75-token chunks.
    #[default]
    A1111,
    /// diffusers': the text as written, cut at 75 tokens.
    Plain,
}

impl PromptSyntax {
    pub const ALL: [PromptSyntax; 2] = [PromptSyntax::A1111, PromptSyntax::Plain];

    /// What recipes saved before the field existed meant (Lantern was plain then).
    pub fn legacy() -> PromptSyntax {
        PromptSyntax::Plain
    }

    /// The `--prompt-syntax` value and the name in saved recipes.
    pub fn name(self) -> &'static str {
        match self {
            PromptSyntax::A1111 => "a1111",
            PromptSyntax::Plain => "plain",
        }
    }
}

impl fmt::Display for PromptSyntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PromptSyntax {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        PromptSyntax::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown prompt syntax `{s}` (a1111 or plain)"))
    }
}

/// One piece of a parsed prompt: text and its emphasis weight. A1111 marks a `BREAK` as the
/// piece `("BREAK", -1)`; see [`AttentionPiece::is_break`].
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionPiece {
    pub text: String,
    pub weight: f64,
}

impl AttentionPiece {
    /// A1111's test: the text `BREAK` with weight exactly -1.
    pub fn is_break(&self) -> bool {
        self.text == "BREAK" && self.weight == -1.0
    }
}

/// A1111's tokens of the emphasis syntax, in its order (leftmost alternative wins).
static ATTENTION_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\\(|\\\)|\\\[|\\\]|\\\\|\\|\(|\[|:[\s\x1c-\x1f]*([+-]?[.\d]+)[\s\x1c-\x1f]*\)|\)|\]|[^\\()\[\]:]+|:")
        .expect("valid regex")
});

/// `parse_prompt_attention`: the prompt as (text, weight) pieces, equal weights merged.
///
/// The only error is a weight that is not a number (`(a:1.2.3)`, `(a:.)`), where A1111 fails
/// too; weights that overflow are `inf` here and refused when the prompt is encoded.
pub fn parse_prompt_attention(text: &str) -> Result<Vec<AttentionPiece>> {
    let mut res: Vec<AttentionPiece> = Vec::new();
    let mut round: Vec<usize> = Vec::new();
    let mut square: Vec<usize> = Vec::new();
    fn multiply(res: &mut [AttentionPiece], from: usize, by: f64) {
        for piece in &mut res[from..] {
            piece.weight *= by;
        }
    }
    for m in ATTENTION_RE.captures_iter(text) {
        let token = m.get(0).map_or("", |t| t.as_str());
        if let Some(literal) = token.strip_prefix('\\') {
            res.push(AttentionPiece {
                text: literal.to_owned(),
                weight: 1.0,
            });
        } else if token == "(" {
            round.push(res.len());
        } else if token == "[" {
            square.push(res.len());
        } else if let (Some(number), false) = (m.get(1), round.is_empty()) {
            let weight = parse_weight(number.as_str())?;
            let from = round.pop().expect("not empty");
            multiply(&mut res, from, weight);
        } else if token == ")" && !round.is_empty() {
            let from = round.pop().expect("not empty");
            multiply(&mut res, from, 1.1);
        } else if token == "]" && !square.is_empty() {
            let from = square.pop().expect("not empty");
            multiply(&mut res, from, 1.0 / 1.1);
        } else {
            for (i, part) in split_break(token).into_iter().enumerate() {
                if i > 0 {
                    res.push(AttentionPiece {
                        text: "BREAK".into(),
                        weight: -1.0,
                    });
                }
                res.push(AttentionPiece {
                    text: part.to_owned(),
                    weight: 1.0,
                });
            }
        }
    }
    // Still open at the end: closed there, in the order they were opened.
    for from in round {
        multiply(&mut res, from, 1.1);
    }
    for from in square {
        multiply(&mut res, from, 1.0 / 1.1);
    }
    if res.is_empty() {
        res.push(AttentionPiece {
            text: String::new(),
            weight: 1.0,
        });
    }
    let mut merged: Vec<AttentionPiece> = Vec::with_capacity(res.len());
    for piece in res {
        match merged.last_mut() {
            Some(last) if last.weight == piece.weight => last.text.push_str(&piece.text),
            _ => merged.push(piece),
        }
    }
    Ok(merged)
}

/// Python's `float()` on what `[+-]?[.\d]+` matched.
fn parse_weight(number: &str) -> Result<f64> {
    number.parse::<f64>().map_err(|_| {
        Error::invalid(format!(
            "the prompt weight `{number}` is not a number (write it like `(word:1.2)`)"
        ))
    })
}

/// Python's `\w` for `str` patterns, near enough: letters, digits, underscore.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Python's `\s` for `str` patterns (`str.isspace`): Unicode whitespace and 0x1C–0x1F.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `re.split(r"\s*\bBREAK\b\s*", text)`.
fn split_break(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut last, mut search) = (0, 0);
    while let Some(offset) = text[search..].find("BREAK") {
        let start = search + offset;
        let end = start + "BREAK".len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            search = start + 1;
            continue;
        }
        // The match starts where the whitespace before it starts (not before the last match).
        let mut from = start;
        while let Some(c) = text[last..from].chars().next_back().filter(|&c| is_space(c)) {
            from -= c.len_utf8();
        }
        let mut to = end;
        while let Some(c) = text[to..].chars().next().filter(|&c| is_space(c)) {
            to += c.len_utf8();
        }
        parts.push(&text[last..from]);
        last = to;
        search = to;
    }
    parts.push(&text[last..]);
    parts
}

/// One chunk as the text encoder receives it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Chunk {
    /// [`CHUNK_IDS`] ids: start, content, end padding (the pad id after the first end token).
    pub ids: Vec<u32>,
    /// One weight per id (1 for start, end and padding), as the emphasis multiplies them.
    pub weights: Vec<f32>,
    /// Textual-inversion embeddings placed in the chunk: (position in `ids`, which
    /// embedding). Its vectors replace the token embeddings from that position on (A1111's
    /// `PromptChunkFix`); the ids there are placeholders.
    pub fixes: Vec<(usize, usize)>,
}

/// A textual-inversion embedding as the chunker sees it: the name's token ids (how the
/// prompt spells it) and how many vectors stand in for them.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingTokens {
    pub ids: Vec<u32>,
    pub vectors: usize,
    /// Which embedding (index into the caller's list).
    pub index: usize,
}

/// The embedding whose name's ids start at `tokens[at]`, the longest first (A1111's
/// `find_embedding_at_position`).
fn embedding_at<'a>(embeddings: &'a [EmbeddingTokens], tokens: &[u32], at: usize) -> Option<&'a EmbeddingTokens> {
    embeddings
        .iter()
        .filter(|e| !e.ids.is_empty() && tokens[at..].starts_with(&e.ids))
        .max_by_key(|e| e.ids.len())
}

/// A plain (diffusers-style) prompt with embeddings: the name's tokens replaced by the
/// embedding's placeholders, cut at 75 content tokens, in one chunk.
pub fn plain_chunk(tokenizer: &ClipTokenizer, text: &str, embeddings: &[EmbeddingTokens]) -> Chunk {
    let tokens = tokenizer.encode(text);
    let (mut ids, mut fixes) = (Vec::new(), Vec::new());
    let mut at = 0;
    while at < tokens.len() {
        match embedding_at(embeddings, &tokens, at) {
            // An embedding that would cross the 75-token cut is cut whole (diffusers would
            // keep its first vectors); the text after it is cut anyway.
            Some(e) if ids.len() + e.vectors > CHUNK_TOKENS => break,
            Some(e) => {
                fixes.push((ids.len() + 1, e.index));
                ids.extend(std::iter::repeat_n(PLACEHOLDER, e.vectors));
                at += e.ids.len();
            }
            None => {
                ids.push(tokens[at]);
                at += 1;
            }
        }
    }
    ids.truncate(CHUNK_TOKENS);
    let mut chunk = Chunk::default();
    let weights = vec![1.0; ids.len()];
    finish_chunk(tokenizer, &mut chunk, ids, weights);
    chunk.fixes = fixes;
    chunk
}

/// The id an embedding's positions carry (A1111 uses 0); its token embedding is replaced.
const PLACEHOLDER: u32 = 0;

impl Chunk {
    /// Whether every weight is 1 (the emphasis then changes nothing).
    pub fn is_unweighted(&self) -> bool {
        self.weights.iter().all(|&w| w == 1.0)
    }
}

/// A prompt cut into chunks for one tokenizer.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkedPrompt {
    pub chunks: Vec<Chunk>,
    /// A1111's token count (see [`TokenCount`]).
    pub token_count: usize,
}

/// What the prompt box's counter shows: `tokens/limit`, A1111's `82/150`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenCount {
    /// Tokens as A1111 counts them: 75 for each full chunk (a chunk ended early by `BREAK` or
    /// a comma counts 75), plus the last chunk's tokens. Plain syntax: the prompt's tokens.
    pub tokens: usize,
    /// 75 × chunks for A1111 syntax; 75 for plain (more tokens than this are cut off).
    pub limit: usize,
}

impl TokenCount {
    /// Chunks the prompt takes (plain syntax: always 1).
    pub fn chunks(&self) -> usize {
        self.limit / CHUNK_TOKENS
    }

    /// Whether tokens are lost: only plain syntax cuts the prompt.
    pub fn truncated(&self) -> bool {
        self.tokens > self.limit
    }
}

impl fmt::Display for TokenCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tokens, self.limit)
    }
}

/// The token counter for a prompt box, with the model's first tokenizer (as A1111 counts).
/// Fast enough for every keystroke: one tokenizer pass, no model. Errors only on a weight
/// that is not a number, which the box can show as it would the run's error.
pub fn count_tokens(tokenizer: &ClipTokenizer, text: &str, syntax: PromptSyntax) -> Result<TokenCount> {
    count_tokens_with(tokenizer, text, syntax, &[])
}

/// [`count_tokens`] with textual-inversion embeddings: each takes as many tokens as vectors.
pub fn count_tokens_with(
    tokenizer: &ClipTokenizer,
    text: &str,
    syntax: PromptSyntax,
    embeddings: &[EmbeddingTokens],
) -> Result<TokenCount> {
    match syntax {
        PromptSyntax::Plain if embeddings.is_empty() => Ok(TokenCount {
            tokens: tokenizer.count_tokens(text),
            limit: tokenizer.max_content_tokens(),
        }),
        PromptSyntax::Plain => {
            let tokens = tokenizer.encode(text);
            let mut count = 0;
            let mut at = 0;
            while at < tokens.len() {
                let e = embedding_at(embeddings, &tokens, at);
                count += e.map_or(1, |e| e.vectors);
                at += e.map_or(1, |e| e.ids.len());
            }
            Ok(TokenCount {
                tokens: count,
                limit: tokenizer.max_content_tokens(),
            })
        }
        PromptSyntax::A1111 => {
            let parsed = parse_prompt_attention(text)?;
            let tokens = chunk_pieces(tokenizer, &parsed, false, embeddings).token_count;
            Ok(TokenCount {
                tokens,
                limit: tokens.max(1).div_ceil(CHUNK_TOKENS) * CHUNK_TOKENS,
            })
        }
    }
}

/// A1111's `tokenize_line`: the prompt in chunks with per-token weights, for one tokenizer.
pub fn chunk_prompt(tokenizer: &ClipTokenizer, text: &str) -> Result<ChunkedPrompt> {
    chunk_prompt_with(tokenizer, text, &[])
}

/// [`chunk_prompt`] with textual-inversion embeddings found by their names' tokens.
pub fn chunk_prompt_with(
    tokenizer: &ClipTokenizer,
    text: &str,
    embeddings: &[EmbeddingTokens],
) -> Result<ChunkedPrompt> {
    let parsed = parse_prompt_attention(text)?;
    Ok(chunk_pieces(tokenizer, &parsed, true, embeddings))
}

/// The chunk an A1111 batch pads with (`empty_chunk`): start, then end tokens.
pub fn empty_chunk(tokenizer: &ClipTokenizer) -> Chunk {
    let mut chunk = Chunk::default();
    finish_chunk(tokenizer, &mut chunk, Vec::new(), Vec::new());
    chunk
}

/// Start + content (end-padded to 75) + end, then the pad id after the first end token.
fn finish_chunk(tokenizer: &ClipTokenizer, chunk: &mut Chunk, ids: Vec<u32>, weights: Vec<f64>) {
    let (end, pad) = (tokenizer.eos_id(), tokenizer.pad_id());
    chunk.ids.clear();
    chunk.weights.clear();
    chunk.ids.push(tokenizer.bos_id());
    chunk.weights.push(1.0);
    chunk.ids.extend(&ids);
    // Weights travel as f32, as A1111's `torch.asarray(multipliers)` makes them.
    chunk.weights.extend(weights.iter().map(|&w| w as f32));
    chunk.ids.resize(CHUNK_IDS, end);
    chunk.weights.resize(CHUNK_IDS, 1.0);
    if pad != end
        && let Some(first_end) = chunk.ids.iter().position(|&id| id == end)
    {
        for id in &mut chunk.ids[first_end + 1..] {
            *id = pad;
        }
    }
}

/// The chunk being filled and what is done so far.
struct Chunker<'a> {
    tokenizer: &'a ClipTokenizer,
    /// Whether to keep the chunks (false: only count).
    build: bool,
    chunks: Vec<Chunk>,
    emitted: usize,
    token_count: usize,
    ids: Vec<u32>,
    weights: Vec<f64>,
    /// Embeddings placed in the chunk being filled: (content position, embedding).
    fixes: Vec<(usize, usize)>,
}

impl Chunker<'_> {
    /// A1111's `next_chunk`: the last chunk counts its tokens, every other one 75.
    fn next_chunk(&mut self, is_last: bool) {
        self.token_count += if is_last { self.ids.len() } else { CHUNK_TOKENS };
        self.emitted += 1;
        let (ids, weights) = (std::mem::take(&mut self.ids), std::mem::take(&mut self.weights));
        let fixes = std::mem::take(&mut self.fixes);
        if self.build {
            let mut chunk = Chunk::default();
            finish_chunk(self.tokenizer, &mut chunk, ids, weights);
            // Content position p is id p + 1, after the start token.
            chunk.fixes = fixes.into_iter().map(|(p, e)| (p + 1, e)).collect();
            self.chunks.push(chunk);
        }
    }
}

/// The chunking loop; `build` false only counts (no chunk vectors are kept).
fn chunk_pieces(
    tokenizer: &ClipTokenizer,
    parsed: &[AttentionPiece],
    build: bool,
    embeddings: &[EmbeddingTokens],
) -> ChunkedPrompt {
    let comma = tokenizer.vocab_id(",</w>");
    let mut c = Chunker {
        tokenizer,
        build,
        chunks: Vec::new(),
        emitted: 0,
        token_count: 0,
        ids: Vec::with_capacity(CHUNK_TOKENS),
        weights: Vec::with_capacity(CHUNK_TOKENS),
        fixes: Vec::new(),
    };
    let mut last_comma: Option<usize> = None;
    for piece in parsed {
        if piece.is_break() {
            c.next_chunk(false);
            last_comma = None;
            continue;
        }
        let tokens = tokenizer.encode(&piece.text);
        let mut position = 0;
        while position < tokens.len() {
            let token = tokens[position];
            if Some(token) == comma {
                last_comma = Some(c.ids.len());
            } else if c.ids.len() == CHUNK_TOKENS
                && let Some(at) = last_comma.filter(|&at| CHUNK_TOKENS - at <= COMMA_BACKTRACK)
            {
                let moved_ids = c.ids.split_off(at + 1);
                let moved_weights = c.weights.split_off(at + 1);
                // Embeddings past the comma move with their tokens (A1111 leaves them behind,
                // which writes their vectors over the old chunk's padding).
                let (kept, moved): (Vec<_>, Vec<_>) = c.fixes.drain(..).partition(|&(p, _)| p <= at);
                c.fixes = kept;
                c.next_chunk(false);
                last_comma = None;
                c.ids = moved_ids;
                c.weights = moved_weights;
                c.fixes = moved.into_iter().map(|(p, e)| (p - (at + 1), e)).collect();
            }
            if c.ids.len() == CHUNK_TOKENS {
                c.next_chunk(false);
                last_comma = None;
            }
            match embedding_at(embeddings, &tokens, position) {
                None => {
                    c.ids.push(token);
                    c.weights.push(piece.weight);
                    position += 1;
                }
                Some(e) => {
                    // An embedding is never split across chunks.
                    if c.ids.len() + e.vectors > CHUNK_TOKENS {
                        c.next_chunk(false);
                        last_comma = None;
                    }
                    c.fixes.push((c.ids.len(), e.index));
                    c.ids.extend(std::iter::repeat_n(PLACEHOLDER, e.vectors));
                    c.weights.extend(std::iter::repeat_n(piece.weight, e.vectors));
                    position += e.ids.len();
                }
            }
        }
    }
    if !c.ids.is_empty() || c.emitted == 0 {
        c.next_chunk(true);
    }
    ChunkedPrompt {
        chunks: c.chunks,
        token_count: c.token_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(String, f64)> {
        parse_prompt_attention(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.text, p.weight))
            .collect()
    }

    fn pieces(list: &[(&str, f64)]) -> Vec<(String, f64)> {
        list.iter().map(|(t, w)| (t.to_string(), *w)).collect()
    }

    #[test]
    fn a1111_doctests() {
        assert_eq!(parse("normal text"), pieces(&[("normal text", 1.0)]));
        assert_eq!(
            parse("an (important) word"),
            pieces(&[("an ", 1.0), ("important", 1.1), (" word", 1.0)])
        );
        assert_eq!(parse("(unbalanced"), pieces(&[("unbalanced", 1.1)]));
        assert_eq!(parse(r"\(literal\]"), pieces(&[("(literal]", 1.0)]));
        assert_eq!(parse("(unnecessary)(parens)"), pieces(&[("unnecessaryparens", 1.1)]));
        assert_eq!(
            parse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."),
            pieces(&[
                ("a ", 1.0),
                ("house", 1.5730000000000004),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.55),
                (", sun, ", 1.1),
                ("sky", 1.4641000000000006),
                (".", 1.1),
            ])
        );
    }

    #[test]
    fn breaks_and_edges() {
        assert_eq!(parse("a BREAK b"), pieces(&[("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]));
        assert_eq!(parse("aBREAK b"), pieces(&[("aBREAK b", 1.0)]));
        assert_eq!(
            parse("BREAK BREAK"),
            pieces(&[("", 1.0), ("BREAK", -1.0), ("", 1.0), ("BREAK", -1.0), ("", 1.0)])
        );
        // Inside brackets the marker's weight is multiplied: the literal word, as in A1111.
        assert_eq!(parse("(a BREAK b)")[1], ("BREAK".to_string(), -1.1));
        assert_eq!(parse(""), pieces(&[("", 1.0)]));
        assert_eq!(parse("(((("), pieces(&[("", 1.0)]));
        assert_eq!(parse("(a: -0.5 )"), pieces(&[("a", -0.5)]));
        assert_eq!(parse("(a:0)"), pieces(&[("a", 0.0)]));
        assert_eq!(parse("(a: -0.5)"), pieces(&[("a", -0.5)]));
        assert_eq!(parse("(a:1e308)"), pieces(&[("a:1e308", 1.1)]));
        assert_eq!(parse("(a:nan)"), pieces(&[("a:nan", 1.1)]));
        assert_eq!(parse(r"a \\ b \ c"), pieces(&[(r"a \ b  c", 1.0)]));
        assert!(parse_prompt_attention("(a:1.2.3)").is_err());
        assert_eq!(parse("a:b)c]"), pieces(&[("a:b)c]", 1.0)]));
    }

    #[test]
    fn syntax_names_round_trip() {
        for s in PromptSyntax::ALL {
            assert_eq!(s.name().parse::<PromptSyntax>().unwrap(), s);
        }
        assert!("markdown".parse::<PromptSyntax>().is_err());
    }

    fn tok() -> ClipTokenizer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sd1-tiny/tokenizer");
        ClipTokenizer::from_folder(&dir).unwrap()
    }

    fn emb(tok: &ClipTokenizer, name: &str, vectors: usize, index: usize) -> EmbeddingTokens {
        EmbeddingTokens {
            ids: tok.encode(name),
            vectors,
            index,
        }
    }

    #[test]
    fn an_embedding_takes_its_vector_count_and_carries_its_weight() {
        let tok = tok();
        let e = [emb(&tok, "lanternstyle", 3, 0)];
        let c = chunk_prompt_with(&tok, "a (lanternstyle:1.5) fox", &e).unwrap();
        let a = tok.encode("a").len();
        let chunk = &c.chunks[0];
        assert_eq!(chunk.fixes, vec![(1 + a, 0)]);
        assert_eq!(&chunk.ids[1 + a..4 + a], &[PLACEHOLDER; 3]);
        assert_eq!(&chunk.weights[1 + a..4 + a], &[1.5f32; 3]);
        let plain = tok.encode("a fox").len();
        assert_eq!(c.token_count, plain + 3);
        let counted = count_tokens_with(&tok, "a (lanternstyle:1.5) fox", PromptSyntax::A1111, &e).unwrap();
        assert_eq!(counted.tokens, plain + 3);
        let counted = count_tokens_with(&tok, "a lanternstyle fox", PromptSyntax::Plain, &e).unwrap();
        assert_eq!(counted.tokens, plain + 3);
    }

    #[test]
    fn an_embedding_is_never_split_across_chunks() {
        let tok = tok();
        let e = [emb(&tok, "lanternstyle", 4, 0)];
        let per_word = tok.encode("cat").len();
        assert_eq!(per_word, 1);
        // 73 words, then a 4-vector embedding: it does not fit in the first chunk's 2 slots.
        let prompt = format!("{} lanternstyle", vec!["cat"; 73].join(" "));
        let c = chunk_prompt_with(&tok, &prompt, &e).unwrap();
        assert_eq!(c.chunks.len(), 2);
        assert!(c.chunks[0].fixes.is_empty());
        assert_eq!(c.chunks[1].fixes, vec![(1, 0)]);
        assert_eq!(c.token_count, 75 + 4);
    }

    #[test]
    fn a_comma_break_moves_the_embeddings_after_it() {
        let tok = tok();
        let e = [emb(&tok, "lanternstyle", 2, 0)];
        // 70 words, a comma, the embedding (2), then words past 75: the chunk breaks after the
        // comma and the embedding moves to the second chunk with its tokens.
        let prompt = format!("{}, lanternstyle cat cat cat cat", vec!["cat"; 70].join(" "));
        let c = chunk_prompt_with(&tok, &prompt, &e).unwrap();
        assert_eq!(c.chunks.len(), 2);
        assert!(c.chunks[0].fixes.is_empty(), "{:?}", c.chunks[0].fixes);
        assert_eq!(c.chunks[1].fixes, vec![(1, 0)]);
        assert_eq!(&c.chunks[1].ids[1..3], &[PLACEHOLDER; 2]);
    }

    #[test]
    fn plain_chunks_place_embeddings_and_cut_at_75() {
        let tok = tok();
        let e = [emb(&tok, "lanternstyle", 2, 0), emb(&tok, "lanternone", 1, 1)];
        let chunk = plain_chunk(&tok, "lanternone harbour lanternstyle", &e);
        let harbour = tok.encode("harbour").len();
        assert_eq!(chunk.fixes, vec![(1, 1), (2 + harbour, 0)]);
        assert_eq!(chunk.ids.len(), CHUNK_IDS);
        let long = format!("{} lanternstyle", vec!["cat"; 80].join(" "));
        let chunk = plain_chunk(&tok, &long, &e);
        assert_eq!(chunk.ids.len(), CHUNK_IDS);
        assert_eq!(chunk.ids[CHUNK_IDS - 1], tok.eos_id());
        assert!(chunk.fixes.is_empty(), "the embedding was cut off with the text");
    }
}
