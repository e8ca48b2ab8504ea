//! What the history view shows, as plain data: the filters the user set, the pages of
//! results the background query thread sent back, the thumbnails uploaded so far, the
//! entry opened in the detail panel. The panel draws from this and asks for
//! [`HistoryAction`]s; the app owns the threads that fill it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp, ZonedDateTime};

use crate::history::{Entry, Query};

/// Entries per page fetched from the database. A page is a little more than a full 1080p
/// screen of thumbnails, so scrolling needs a new query only every screen or so.
pub const PAGE_SIZE: usize = 120;

/// Most result pages kept in memory (pages far from the visible rows are dropped first).
pub const MAX_PAGES: usize = 40;

/// Most thumbnail textures kept on the GPU; the least recently drawn go first. 300 textures of
/// at most 256×256 are under 80 MB, and several screens' worth at any window size.
pub const TEXTURE_CAP: usize = 300;

/// How long the search box must be still before its text is searched for: typing "lighthouse"
/// runs one query, not ten.
pub const SEARCH_DEBOUNCE: Duration = Duration::from_millis(180);

/// What the history panel can ask for.
#[derive(Clone, Debug, PartialEq)]
pub enum HistoryAction {
    /// Switch between the Create view (false) and the History view (true).
    ShowHistory(bool),
    /// Open an entry in the detail panel (its full image is decoded on another thread).
    Open(Box<Entry>),
    CloseDetail,
    /// Restore every parameter, the seed and (if known) the model; go back to Create.
    UseSettings(Box<Entry>),
    /// Restore, then queue a generation with those settings.
    Rerun(Box<Entry>),
    SetFavourite {
        id: i64,
        favourite: bool,
    },
    CopyPrompt(String),
    ShowInFolder(PathBuf),
    /// Ask for confirmation before deleting (the dialog has the "also delete the file" box).
    AskDelete(Box<Entry>),
    Delete {
        id: i64,
        delete_file: bool,
    },
}

/// The date filter's choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DateRange {
    #[default]
    All,
    Today,
    Last7Days,
    Last30Days,
}

impl DateRange {
    pub const ALL: [DateRange; 4] = [
        DateRange::All,
        DateRange::Today,
        DateRange::Last7Days,
        DateRange::Last30Days,
    ];

    pub fn label(self) -> String {
        match self {
            DateRange::All => crate::t!("date-any"),
            DateRange::Today => crate::t!("date-today"),
            DateRange::Last7Days => crate::t!("date-last-7-days"),
            DateRange::Last30Days => crate::t!("date-last-30-days"),
        }
    }

    /// The earliest instant this range includes, seen from `now` (local time: "today"
    /// starts at the user's midnight, not UTC's).
    pub fn since(self, now: &ZonedDateTime) -> Option<Timestamp> {
        let days = |n: i64| Some(now.timestamp() - SignedDuration::from_hours(24 * n));
        match self {
            DateRange::All => None,
            DateRange::Today => now.start_of_day().ok().map(|d| d.timestamp()),
            DateRange::Last7Days => days(7),
            DateRange::Last30Days => days(30),
        }
    }
}

/// The filters above the grid.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryFilters {
    pub search: String,
    /// Exact model name, or every model.
    pub model: Option<String>,
    pub favourites_only: bool,
    pub date: DateRange,
}

impl HistoryFilters {
    /// The store query for these filters (no paging: pages set offset and limit).
    pub fn to_query(&self, now: &ZonedDateTime) -> Query {
        let search = self.search.trim();
        Query {
            search: (!search.is_empty()).then(|| search.to_string()),
            model: self.model.clone(),
            favourites_only: self.favourites_only,
            since: self.date.since(now),
            limit: None,
            ..Query::default()
        }
    }
}

/// The full-size picture of the opened entry.
#[derive(Clone, Default)]
pub enum DetailImage {
    #[default]
    None,
    Loading,
    Ready(egui::TextureHandle),
    /// The file is gone or unreadable; the text says which.
    Unavailable(String),
}

/// The entry waiting for the user to confirm its deletion.
#[derive(Clone, Debug, PartialEq)]
pub struct DeleteConfirm {
    pub entry: Entry,
    pub also_file: bool,
}

/// One cell's picture, as the grid should draw it.
pub enum ThumbSlot {
    Ready(egui::TextureId, egui::Vec2),
    /// Could not be made (usually: the file is missing).
    Failed(String),
    Pending,
}

struct CachedThumb {
    texture: egui::TextureHandle,
    last_used: u64,
}

/// Thumbnail textures with a least-recently-drawn cap, and per frame, which entries the grid
/// drew and which of those still need a thumbnail.
#[derive(Default)]
pub struct ThumbCache {
    textures: HashMap<i64, CachedThumb>,
    failed: HashMap<i64, String>,
    frame: u64,
    /// Entries drawn this frame with no texture yet, in drawing order (the app asks the
    /// loader for these).
    pub wanted: Vec<(i64, PathBuf)>,
    /// Entries drawn this frame: a loaded thumbnail is uploaded only if it is one of these.
    pub visible: HashSet<i64>,
}

impl ThumbCache {
    /// Starts a frame: forgets what was drawn last time.
    pub fn begin_frame(&mut self) {
        self.frame += 1;
        self.wanted.clear();
        self.visible.clear();
    }

    /// The picture for an entry being drawn; asks for it when there is none yet.
    pub fn slot(&mut self, id: i64, path: &std::path::Path) -> ThumbSlot {
        self.visible.insert(id);
        if let Some(t) = self.textures.get_mut(&id) {
            t.last_used = self.frame;
            return ThumbSlot::Ready(t.texture.id(), t.texture.size_vec2());
        }
        if let Some(reason) = self.failed.get(&id) {
            return ThumbSlot::Failed(reason.clone());
        }
        self.wanted.push((id, path.to_path_buf()));
        ThumbSlot::Pending
    }

    /// Keeps an uploaded thumbnail, dropping the least recently drawn beyond [`TEXTURE_CAP`].
    pub fn insert(&mut self, id: i64, texture: egui::TextureHandle) {
        self.failed.remove(&id);
        self.textures.insert(
            id,
            CachedThumb {
                texture,
                last_used: self.frame,
            },
        );
        self.evict(TEXTURE_CAP);
    }

    pub fn set_failed(&mut self, id: i64, reason: String) {
        self.textures.remove(&id);
        self.failed.insert(id, reason);
    }

    /// Forgets failures (a refresh may find a file that came back).
    pub fn clear_failed(&mut self) {
        self.failed.clear();
    }

    pub fn remove(&mut self, id: i64) {
        self.textures.remove(&id);
        self.failed.remove(&id);
    }

    pub fn texture_count(&self) -> usize {
        self.textures.len()
    }

    pub fn has_texture(&self, id: i64) -> bool {
        self.textures.contains_key(&id)
    }

    /// Whether the entry's thumbnail could not be made (its cell shows a placeholder).
    pub fn is_failed(&self, id: i64) -> bool {
        self.failed.contains_key(&id)
    }

    fn evict(&mut self, cap: usize) {
        while self.textures.len() > cap {
            let Some(oldest) = self.textures.iter().min_by_key(|(_, t)| t.last_used).map(|(id, _)| *id) else {
                return;
            };
            self.textures.remove(&oldest);
        }
    }
}

/// Everything the history view shows.
#[derive(Default)]
pub struct HistoryView {
    pub filters: HistoryFilters,
    /// When the search text last changed (for the debounce).
    pub search_edited: Option<Instant>,
    /// The filters of the last query sent (the results may still be on their way).
    pub requested: Option<HistoryFilters>,
    /// Which answer the shown results are (stale pages are never mixed in).
    pub generation: u64,
    /// The newest query sent; differs from `generation` while its answer is on its way.
    pub requested_generation: u64,
    /// Entries matching the shown results' filters; `None` before the first answer.
    pub total: Option<u64>,
    /// Result pages by page number, `PAGE_SIZE` entries each.
    pub pages: HashMap<usize, Vec<Entry>>,
    /// Pages the grid drew this frame (present or not).
    pub visible_pages: BTreeSet<usize>,
    /// How long the last query took on the background thread (shown on hover).
    pub last_query_time: Option<Duration>,
    /// Model names in the history with their counts, for the model filter.
    pub models: Vec<(String, u64)>,
    /// The entry in the detail panel.
    pub selected: Option<Entry>,
    pub detail: DetailImage,
    /// The opened entry's start picture (its mask tinted over it), when it had one.
    pub detail_start: DetailImage,
    pub confirm_delete: Option<DeleteConfirm>,
    pub thumbs: ThumbCache,
    /// Why the history cannot be shown (it could not be opened), if so.
    pub error: Option<String>,
    /// Scroll the grid back to the top on the next frame (new filters).
    pub scroll_to_top: bool,
}

impl HistoryView {
    /// The entry at a position in the results (newest first), if its page has arrived.
    pub fn entry_at(&self, index: usize) -> Option<&Entry> {
        self.pages.get(&(index / PAGE_SIZE))?.get(index % PAGE_SIZE)
    }

    /// Whether the search box has been still long enough for its text to be searched for.
    pub fn search_settled(&self, now: Instant) -> bool {
        let same = self.requested.as_ref().is_some_and(|r| r.search == self.filters.search);
        same || self
            .search_edited
            .is_none_or(|t| now.duration_since(t) >= SEARCH_DEBOUNCE)
    }

    /// Takes in a fresh answer: its count and pages replace the shown ones at once, so the
    /// grid never shows a mix of two queries.
    pub fn replace_results(&mut self, generation: u64, total: u64, pages: Vec<(usize, Vec<Entry>)>) {
        self.generation = generation;
        self.total = Some(total);
        self.pages = pages.into_iter().collect();
        self.thumbs.clear_failed();
    }

    /// Adds a page of the current answer, dropping far-away pages beyond [`MAX_PAGES`].
    pub fn add_page(&mut self, generation: u64, page: usize, entries: Vec<Entry>) {
        if generation != self.generation {
            return;
        }
        self.pages.insert(page, entries);
        let centre = self.visible_pages.iter().next().copied().unwrap_or(page);
        while self.pages.len() > MAX_PAGES {
            let Some(far) = self
                .pages
                .keys()
                .filter(|p| !self.visible_pages.contains(p))
                .max_by_key(|p| p.abs_diff(centre))
                .copied()
            else {
                break;
            };
            self.pages.remove(&far);
        }
    }

    /// Applies a favourite change to every copy of the entry on screen.
    pub fn patch_favourite(&mut self, id: i64, favourite: bool) {
        for entry in self.pages.values_mut().flatten().filter(|e| e.id == id) {
            entry.favourite = favourite;
        }
        if let Some(e) = self.selected.as_mut().filter(|e| e.id == id) {
            e.favourite = favourite;
        }
    }
}

/// "1 match", "10,000 matches".
pub fn matches_label(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    // Fluent's number formatting has no grouping: group here, pick the plural form there.
    crate::t!("history-matches", count = n, shown = grouped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::Recipe;

    fn entry(id: i64) -> Entry {
        Entry {
            id,
            created_at: Timestamp::UNIX_EPOCH,
            params: Recipe::default(),
            duration_ms: None,
            image_path: PathBuf::from(format!("/x/{id}.png")),
            favourite: false,
        }
    }

    #[test]
    fn labels_group_thousands() {
        assert_eq!(matches_label(0), "0 matches");
        assert_eq!(matches_label(1), "1 match");
        assert_eq!(matches_label(999), "999 matches");
        assert_eq!(matches_label(10_000), "10,000 matches");
        assert_eq!(matches_label(1_234_567), "1,234,567 matches");
    }

    #[test]
    fn date_ranges_start_at_local_midnight_and_whole_days() {
        let tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(2));
        let now = jiff::civil::date(2026, 3, 10)
            .at(15, 30, 0, 0)
            .to_zoned_datetime(tz)
            .unwrap();
        let midnight: Timestamp = "2026-03-09T22:00:00Z".parse().unwrap();
        assert_eq!(DateRange::Today.since(&now), Some(midnight));
        let week: Timestamp = "2026-03-03T13:30:00Z".parse().unwrap();
        assert_eq!(DateRange::Last7Days.since(&now), Some(week));
        assert_eq!(DateRange::All.since(&now), None);
    }

    #[test]
    fn filters_become_a_query() {
        let now = ZonedDateTime::now();
        let f = HistoryFilters {
            search: "  红色 fox ".into(),
            model: Some("sd15".into()),
            favourites_only: true,
            date: DateRange::All,
        };
        let q = f.to_query(&now);
        assert_eq!(q.search.as_deref(), Some("红色 fox"));
        assert_eq!(q.model.as_deref(), Some("sd15"));
        assert!(q.favourites_only);
        assert_eq!(q.limit, None);
        assert_eq!(HistoryFilters::default().to_query(&now).search, None);
    }

    #[test]
    fn stale_pages_are_ignored_and_far_pages_dropped() {
        let mut v = HistoryView::default();
        v.replace_results(2, 10_000, vec![(0, vec![entry(1)])]);
        v.add_page(1, 5, vec![entry(2)]);
        assert!(!v.pages.contains_key(&5), "a page of an older query must not be shown");
        v.visible_pages.insert(0);
        for p in 1..=MAX_PAGES + 5 {
            v.add_page(2, p, vec![entry(p as i64 + 10)]);
        }
        assert_eq!(v.pages.len(), MAX_PAGES);
        assert!(v.pages.contains_key(&0), "visible pages stay");
        assert!(v.pages.contains_key(&1), "near pages stay");
        assert!(!v.pages.contains_key(&(MAX_PAGES + 4)), "far pages go first");
        assert_eq!(v.entry_at(0).map(|e| e.id), Some(1));
        assert_eq!(v.entry_at(PAGE_SIZE).map(|e| e.id), Some(11));
        assert!(v.entry_at(1).is_none());
    }

    #[test]
    fn search_waits_for_the_typing_to_stop() {
        let mut v = HistoryView::default();
        let t0 = Instant::now();
        v.requested = Some(HistoryFilters::default());
        v.filters.search = "fo".into();
        v.search_edited = Some(t0);
        assert!(!v.search_settled(t0 + Duration::from_millis(50)));
        assert!(v.search_settled(t0 + SEARCH_DEBOUNCE));
        // Other filters apply at once: only a changed search text waits.
        v.filters.search.clear();
        assert!(v.search_settled(t0));
    }

    #[test]
    fn texture_cache_drops_the_least_recently_drawn() {
        let ctx = egui::Context::default();
        let mut cache = ThumbCache::default();
        let tex = |i: i64| ctx.load_texture(format!("t{i}"), egui::ColorImage::example(), Default::default());
        for i in 0..TEXTURE_CAP as i64 {
            cache.begin_frame();
            let _ = cache.slot(i, std::path::Path::new("/x"));
            cache.insert(i, tex(i));
        }
        // Entry 0 is drawn again, so entry 1 is now the least recently drawn.
        cache.begin_frame();
        assert!(matches!(
            cache.slot(0, std::path::Path::new("/x")),
            ThumbSlot::Ready(..)
        ));
        cache.insert(9999, tex(9999));
        assert_eq!(cache.texture_count(), TEXTURE_CAP);
        assert!(cache.has_texture(0));
        assert!(!cache.has_texture(1));
        assert!(cache.has_texture(9999));
        // A missing entry is asked for once per frame, in drawing order.
        cache.begin_frame();
        assert!(matches!(cache.slot(1, std::path::Path::new("/a")), ThumbSlot::Pending));
        assert_eq!(cache.wanted, vec![(1, PathBuf::from("/a"))]);
        cache.set_failed(1, "missing".into());
        assert!(matches!(
            cache.slot(1, std::path::Path::new("/a")),
            ThumbSlot::Failed(_)
        ));
    }
}
