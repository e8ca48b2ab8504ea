//! Byte-level BPE with CLIP's `</w>` end-of-word suffix, merging exactly as the `tokenizers`
//! crate does (a priority queue of candidate pairs, lowest rank first, then leftmost).

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;

use crate::error::{Error, Result};

const END_OF_WORD: &str = "</w>";

/// GPT-2's reversible map from bytes to printable characters: printable Latin-1 bytes stand for
/// themselves, the rest are shifted to U+0100 and up. Vocabulary entries are spelled in it.
pub(super) fn byte_to_char_table() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table = ['\0'; 256];
    let mut shifted = 0u32;
    for b in 0..=255u8 {
        table[usize::from(b)] = if printable(b) {
            char::from(b)
        } else {
            shifted += 1;
            char::from_u32(255 + shifted).unwrap_or(char::REPLACEMENT_CHARACTER)
        };
    }
    table
}

/// The merge table and the ids of single bytes, which is all encoding needs from the vocabulary.
pub(super) struct Bpe {
    /// (left id, right id) → (rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Id of each byte as a word-inner symbol, and as a word's last symbol (with `</w>`).
    byte_ids: [Option<u32>; 256],
    byte_end_ids: [Option<u32>; 256],
    /// Stands in for a byte the vocabulary lacks (never happens with a real CLIP vocabulary).
    unk: Option<u32>,
}

impl Bpe {
    /// Builds the merge table. Like `tokenizers`, a merge whose parts or result are not in the
    /// vocabulary is an error, and a repeated pair keeps its last rank.
    pub fn new(
        vocab: &HashMap<String, u32>,
        merges: &[(String, String)],
        unk: Option<&str>,
        source: &Path,
    ) -> Result<Bpe> {
        let lookup = |token: &str, index: usize| {
            vocab.get(token).copied().ok_or_else(|| {
                Error::tokenizer(
                    source,
                    format!("merge {}: `{token}` is not in the vocabulary", index + 1),
                )
            })
        };
        let mut table = HashMap::with_capacity(merges.len());
        for (index, (left, right)) in merges.iter().enumerate() {
            let key = (lookup(left, index)?, lookup(right, index)?);
            let merged = lookup(&format!("{left}{right}"), index)?;
            let rank = u32::try_from(index).map_err(|_| Error::tokenizer(source, "too many merges"))?;
            table.insert(key, (rank, merged));
        }
        let chars = byte_to_char_table();
        let mut byte_ids = [None; 256];
        let mut byte_end_ids = [None; 256];
        for (b, c) in chars.iter().enumerate() {
            byte_ids[b] = vocab.get(c.to_string().as_str()).copied();
            byte_end_ids[b] = vocab.get(format!("{c}{END_OF_WORD}").as_str()).copied();
        }
        Ok(Bpe {
            merges: table,
            byte_ids,
            byte_end_ids,
            unk: unk.and_then(|u| vocab.get(u).copied()),
        })
    }

    /// The ids of one pre-tokenized word (its UTF-8 bytes), `</w>` on the last symbol.
    pub fn encode_word(&self, word: &[u8]) -> Vec<u32> {
        let mut symbols = self.initial_symbols(word);
        self.merge_all(&mut symbols);
        symbols.iter().filter(|s| s.alive).map(|s| s.id).collect()
    }

    fn initial_symbols(&self, word: &[u8]) -> Vec<Symbol> {
        let last = word.len().saturating_sub(1);
        let ids = word.iter().enumerate().filter_map(|(i, &b)| {
            let table = if i == last { &self.byte_end_ids } else { &self.byte_ids };
            table[usize::from(b)].or(self.unk)
        });
        let mut symbols: Vec<Symbol> = ids
            .enumerate()
            .map(|(i, id)| Symbol {
                id,
                prev: i.checked_sub(1),
                next: Some(i + 1),
                alive: true,
            })
            .collect();
        if let Some(last) = symbols.last_mut() {
            last.next = None;
        }
        symbols
    }

    /// `tokenizers`' `Word::merge_all` without dropout: pop the best candidate (lowest rank,
    /// then leftmost); skip it when either side has changed since it was queued (the pair no
    /// longer maps to the same merged id); merge; queue the new pairs on both sides.
    fn merge_all(&self, symbols: &mut [Symbol]) {
        let mut queue: BinaryHeap<Reverse<Candidate>> = symbols
            .windows(2)
            .enumerate()
            .filter_map(|(pos, w)| self.candidate(pos, w[0].id, w[1].id))
            .map(Reverse)
            .collect();
        while let Some(Reverse(top)) = queue.pop() {
            if !symbols[top.pos].alive {
                continue;
            }
            let Some(next) = symbols[top.pos].next else {
                continue;
            };
            let still_valid = self
                .merges
                .get(&(symbols[top.pos].id, symbols[next].id))
                .is_some_and(|&(_, merged)| merged == top.merged);
            if !still_valid {
                continue;
            }
            let right = symbols[next];
            symbols[top.pos].id = top.merged;
            symbols[top.pos].next = right.next;
            symbols[next].alive = false;
            if let Some(after) = right.next {
                symbols[after].prev = Some(top.pos);
            }
            let current = symbols[top.pos];
            if let Some(prev) = current.prev {
                queue.extend(self.candidate(prev, symbols[prev].id, current.id).map(Reverse));
            }
            if let Some(after) = current.next {
                queue.extend(self.candidate(top.pos, current.id, symbols[after].id).map(Reverse));
            }
        }
    }

    fn candidate(&self, pos: usize, left: u32, right: u32) -> Option<Candidate> {
        self.merges
            .get(&(left, right))
            .map(|&(rank, merged)| Candidate { rank, pos, merged })
    }
}

#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    prev: Option<usize>,
    next: Option<usize>,
    alive: bool,
}

/// A queued merge; ordered by rank, then position (the derive compares fields in this order).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    rank: u32,
    pos: usize,
    merged: u32,
}

/// A bounded word → ids cache: prompts repeat words, and the UI re-tokenizes on every keystroke.
pub(super) struct WordCache {
    map: HashMap<Box<str>, Box<[u32]>>,
}

/// Enough for a long prompt session; beyond it new words are simply not cached.
const CACHE_CAPACITY: usize = 10_000;
/// Long words are rare and would hog the cache.
const MAX_CACHED_WORD: usize = 64;

impl WordCache {
    pub fn new() -> WordCache {
        WordCache { map: HashMap::new() }
    }

    pub fn get(&self, word: &str) -> Option<&[u32]> {
        self.map.get(word).map(|ids| &ids[..])
    }

    pub fn insert(&mut self, word: &str, ids: &[u32]) {
        if word.len() > MAX_CACHED_WORD || self.map.len() >= CACHE_CAPACITY {
            return;
        }
        if let Entry::Vacant(slot) = self.map.entry(word.into()) {
            slot.insert(ids.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection_onto_gpt2_chars() {
        let table = byte_to_char_table();
        let mut seen: Vec<char> = table.to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 256);
        assert_eq!(table[usize::from(b'a')], 'a');
        assert_eq!(table[usize::from(b' ')], 'Ġ');
        assert_eq!(table[0], 'Ā');
        assert_eq!(table[0xAD], 'Ń');
    }

    fn toy() -> Bpe {
        let tokens = ["a", "b", "a</w>", "b</w>", "ab", "ab</w>", "aa", "aa</w>"];
        let vocab: HashMap<String, u32> = tokens.iter().zip(0..).map(|(t, i)| (t.to_string(), i)).collect();
        let merges =
            [("a", "b"), ("a", "b</w>"), ("a", "a"), ("a", "a</w>")].map(|(a, b)| (a.to_string(), b.to_string()));
        Bpe::new(&vocab, &merges, None, Path::new("toy")).unwrap()
    }

    #[test]
    fn merges_by_rank_then_leftmost() {
        let bpe = toy();
        assert_eq!(bpe.encode_word(b"ab"), vec![5]);
        assert_eq!(bpe.encode_word(b"abab"), vec![4, 5]);
        // "aaa": (a a) at 0 and 1 share a rank; the leftmost wins, leaving a</w>.
        assert_eq!(bpe.encode_word(b"aaa"), vec![6, 2]);
        assert_eq!(bpe.encode_word(b""), Vec::<u32>::new());
    }

    #[test]
    fn merge_with_unknown_part_is_an_error_naming_the_merge() {
        let vocab: HashMap<String, u32> = [("a".to_string(), 0)].into();
        let merges = [("a".to_string(), "z".to_string())];
        let err = Bpe::new(&vocab, &merges, None, Path::new("merges.txt")).err().unwrap();
        assert_eq!(err.to_string(), "merges.txt: merge 1: `z` is not in the vocabulary");
    }
}
