//! The history's own background thread: it owns the SQLite connection and answers the
//! window's queries, so typing in the search box or scrolling 10,000 entries never waits on
//! the database (or on a recovery that rebuilds it from the PNGs).
//!
//! Queries carry a generation number. When the user types faster than queries finish, the
//! thread skips every request made obsolete by a newer search before running anything.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use crate::history::{Entry, History, Query};

use super::history_state::PAGE_SIZE;
use super::tasks::catch;

/// What the window asks of the history thread.
#[derive(Clone, Debug)]
pub enum HistoryRequest {
    /// New filters (or a refresh): count the matches and send these pages, all in one answer.
    Reset {
        generation: u64,
        query: Query,
        pages: Vec<usize>,
    },
    /// One more page of an earlier `Reset`'s results.
    Page {
        generation: u64,
        query: Query,
        page: usize,
    },
    /// Model names and their counts, for the model filter.
    Models,
    SetFavourite {
        id: i64,
        favourite: bool,
    },
    Delete {
        id: i64,
        delete_file: bool,
    },
}

/// What it answers.
#[derive(Debug)]
pub enum HistoryReply {
    /// The database is open; `notice` tells of a rebuild from the PNGs when there was one.
    Opened {
        notice: Option<String>,
    },
    /// The database could not be opened (the history stays unavailable this run).
    OpenFailed(String),
    Reset {
        generation: u64,
        total: u64,
        pages: Vec<(usize, Vec<Entry>)>,
        took: Duration,
    },
    Page {
        generation: u64,
        page: usize,
        entries: Vec<Entry>,
    },
    Models(Vec<(String, u64)>),
    FavouriteSet {
        id: i64,
        favourite: bool,
        result: Result<(), String>,
    },
    Deleted {
        id: i64,
        delete_file: bool,
        /// The removed entry (boxed: it is large, and this reply is rare).
        result: Result<Option<Box<Entry>>, String>,
    },
    /// A query failed (the text says why).
    Error(String),
}

/// A handle to the thread; dropping it ends the thread once its current query is done.
pub struct HistoryService {
    requests: Sender<HistoryRequest>,
    replies: Receiver<HistoryReply>,
}

impl HistoryService {
    /// Starts the thread, which opens `db` at once (recovering it from the PNGs in `outputs`
    /// if it is damaged). `wake` runs after every reply (the window passes a repaint request).
    pub fn spawn(db: PathBuf, outputs: PathBuf, wake: impl Fn() + Send + 'static) -> HistoryService {
        Self::spawn_with(db, outputs, wake, answer)
    }

    /// [`HistoryService::spawn`] answering each request with `answer` (tests pass one that
    /// panics, to see the thread survive it).
    fn spawn_with(
        db: PathBuf,
        outputs: PathBuf,
        wake: impl Fn() + Send + 'static,
        answer: fn(&mut History, HistoryRequest) -> HistoryReply,
    ) -> HistoryService {
        let (requests, rx) = channel::<HistoryRequest>();
        let (tx, replies) = channel::<HistoryReply>();
        let failed = tx.clone();
        let send = move |reply: HistoryReply| {
            let _ = tx.send(reply);
            wake();
        };
        let started = std::thread::Builder::new()
            .name("lantern-history".into())
            .spawn(move || serve(&db, &outputs, &rx, &send, answer));
        if let Err(e) = started {
            // No thread (the system is out of threads or memory): the history is unavailable
            // this run, said once, instead of a panic in the window.
            let _ = failed.send(HistoryReply::OpenFailed(format!(
                "could not start the history thread: {e}"
            )));
        }
        HistoryService { requests, replies }
    }

    pub fn send(&self, request: HistoryRequest) {
        let _ = self.requests.send(request);
    }

    pub fn try_recv(&self) -> Option<HistoryReply> {
        self.replies.try_recv().ok()
    }
}

/// Panics are caught per request (answered with an error) so the thread keeps serving and the
/// window never waits on a dead one.
fn serve(
    db: &std::path::Path,
    outputs: &std::path::Path,
    rx: &Receiver<HistoryRequest>,
    send: &dyn Fn(HistoryReply),
    answer: fn(&mut History, HistoryRequest) -> HistoryReply,
) {
    let opened = catch("the history", || History::open_or_recover(db, outputs));
    let mut history = match opened.and_then(|o| o.map_err(|e| e.to_string())) {
        Ok(opened) => {
            send(HistoryReply::Opened {
                notice: opened.notice.map(|n| n.to_string()),
            });
            opened.history
        }
        Err(why) => {
            send(HistoryReply::OpenFailed(why));
            return;
        }
    };
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        for request in skip_obsolete(batch) {
            send(catch("a history query", || answer(&mut history, request)).unwrap_or_else(HistoryReply::Error));
        }
    }
}

/// Drops queries a newer `Reset` in the same batch makes pointless (older resets, pages of
/// older generations); everything else keeps its order.
pub fn skip_obsolete(batch: Vec<HistoryRequest>) -> Vec<HistoryRequest> {
    let newest = batch
        .iter()
        .filter_map(|r| match r {
            HistoryRequest::Reset { generation, .. } => Some(*generation),
            _ => None,
        })
        .max();
    let Some(newest) = newest else {
        return batch;
    };
    batch
        .into_iter()
        .filter(|r| match r {
            HistoryRequest::Reset { generation, .. } | HistoryRequest::Page { generation, .. } => *generation >= newest,
            _ => true,
        })
        .collect()
}

fn page_query(query: &Query, page: usize) -> Query {
    Query {
        offset: (page * PAGE_SIZE) as u64,
        limit: Some(PAGE_SIZE as u64),
        ..query.clone()
    }
}

fn answer(history: &mut History, request: HistoryRequest) -> HistoryReply {
    let err = |e: crate::Error| e.to_string();
    match request {
        HistoryRequest::Reset {
            generation,
            query,
            pages,
        } => {
            let started = Instant::now();
            let result = history.count(&query).and_then(|total| {
                let pages = pages
                    .into_iter()
                    .map(|p| history.list(&page_query(&query, p)).map(|e| (p, e)))
                    .collect::<crate::Result<Vec<_>>>()?;
                Ok((total, pages))
            });
            match result {
                Ok((total, pages)) => HistoryReply::Reset {
                    generation,
                    total,
                    pages,
                    took: started.elapsed(),
                },
                Err(e) => HistoryReply::Error(err(e)),
            }
        }
        HistoryRequest::Page {
            generation,
            query,
            page,
        } => match history.list(&page_query(&query, page)) {
            Ok(entries) => HistoryReply::Page {
                generation,
                page,
                entries,
            },
            Err(e) => HistoryReply::Error(err(e)),
        },
        HistoryRequest::Models => match history.models() {
            Ok(models) => HistoryReply::Models(models),
            Err(e) => HistoryReply::Error(err(e)),
        },
        HistoryRequest::SetFavourite { id, favourite } => HistoryReply::FavouriteSet {
            id,
            favourite,
            result: history.set_favourite(id, favourite).map(|_| ()).map_err(err),
        },
        HistoryRequest::Delete { id, delete_file } => HistoryReply::Deleted {
            id,
            delete_file,
            result: history.delete(id, delete_file).map(|e| e.map(Box::new)).map_err(err),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reset(generation: u64) -> HistoryRequest {
        HistoryRequest::Reset {
            generation,
            query: Query::all(),
            pages: vec![0],
        }
    }

    fn page(generation: u64) -> HistoryRequest {
        HistoryRequest::Page {
            generation,
            query: Query::all(),
            page: 1,
        }
    }

    fn generations(batch: &[HistoryRequest]) -> Vec<String> {
        batch
            .iter()
            .map(|r| match r {
                HistoryRequest::Reset { generation, .. } => format!("r{generation}"),
                HistoryRequest::Page { generation, .. } => format!("p{generation}"),
                HistoryRequest::Models => "m".into(),
                _ => "other".into(),
            })
            .collect()
    }

    #[test]
    fn a_newer_search_makes_older_queries_pointless() {
        let batch = vec![page(1), reset(2), HistoryRequest::Models, reset(3), page(2), page(3)];
        assert_eq!(generations(&skip_obsolete(batch)), ["m", "r3", "p3"]);
        let no_reset = vec![page(1), page(1)];
        assert_eq!(generations(&skip_obsolete(no_reset)), ["p1", "p1"]);
    }

    #[test]
    fn a_panicking_query_becomes_an_error_and_the_thread_keeps_serving() {
        let dir = tempfile::tempdir().unwrap();
        let (wake_tx, wake_rx) = channel();
        // Models panics (as a bug in a query would); everything else is answered normally.
        let service = HistoryService::spawn_with(
            dir.path().join("history.sqlite3"),
            dir.path().join("outputs"),
            move || {
                let _ = wake_tx.send(());
            },
            |history, request| match request {
                HistoryRequest::Models => panic!("index out of bounds"),
                other => answer(history, other),
            },
        );
        service.send(HistoryRequest::Models);
        let mut replies = Vec::new();
        let wait = |replies: &mut Vec<HistoryReply>, n: usize| {
            while replies.len() < n {
                wake_rx.recv_timeout(Duration::from_secs(20)).expect("a reply");
                replies.extend(std::iter::from_fn(|| service.try_recv()));
            }
        };
        wait(&mut replies, 2);
        assert!(matches!(replies[0], HistoryReply::Opened { .. }), "{:?}", replies[0]);
        let HistoryReply::Error(why) = &replies[1] else {
            panic!("expected an error, got {:?}", replies[1])
        };
        assert!(
            why.contains("a history query") && why.contains("index out of bounds"),
            "{why}"
        );
        // Still alive: the next query is answered.
        service.send(reset(1));
        wait(&mut replies, 3);
        assert!(
            matches!(
                replies[2],
                HistoryReply::Reset {
                    generation: 1,
                    total: 0,
                    ..
                }
            ),
            "{:?}",
            replies[2]
        );
    }

    #[test]
    fn answers_queries_from_a_real_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("history.sqlite3");
        {
            let mut h = History::open(&db).unwrap();
            let entries: Vec<_> = (0..130)
                .map(|i| {
                    let params = crate::recipe::Recipe {
                        prompt: format!("prompt {i}"),
                        ..Default::default()
                    };
                    crate::history::NewEntry::new(params, format!("/nowhere/{i}.png"))
                })
                .collect();
            h.insert_many(&entries).unwrap();
        }
        let (wake_tx, wake_rx) = channel();
        let service = HistoryService::spawn(db, dir.path().join("outputs"), move || {
            let _ = wake_tx.send(());
        });
        service.send(reset(7));
        service.send(HistoryRequest::Reset {
            generation: 8,
            query: Query::all(),
            pages: vec![0, 1],
        });
        let mut opened = false;
        let mut answer = None;
        while answer.is_none() {
            wake_rx.recv_timeout(Duration::from_secs(20)).expect("a reply");
            for reply in std::iter::from_fn(|| service.try_recv()) {
                match reply {
                    HistoryReply::Opened { notice: None } => opened = true,
                    HistoryReply::Reset {
                        generation: 8,
                        total,
                        pages,
                        ..
                    } => answer = Some((total, pages)),
                    // Generation 7 may be answered or skipped, depending on timing.
                    HistoryReply::Reset { generation: 7, .. } => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert!(opened, "the thread says it opened the history first");
        let (total, pages) = answer.unwrap();
        assert_eq!(total, 130);
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0].1.len(), PAGE_SIZE);
        assert_eq!(pages[1].1.len(), 10);
        assert_eq!(pages[0].1[0].params.prompt, "prompt 129", "newest first");
    }
}
