//! Painting an inpainting mask over the start picture: round brush strokes (paint or erase)
//! into a mask at the picture's own resolution, with undo and redo. Plain data and pure
//! functions; `panels::mask_painter` draws it and turns the pointer into strokes.

use crate::source::GrayImage;

/// The most strokes (or clears, inverts) that can be undone.
const UNDO_LIMIT: usize = 30;

pub struct MaskPainter {
    pub mask: GrayImage,
    /// Brush radius in the picture's pixels.
    pub radius: f32,
    /// Erasing puts black (keep) where the brush goes.
    pub erase: bool,
    undo: Vec<GrayImage>,
    redo: Vec<GrayImage>,
    /// The last point of the stroke being drawn (picture pixels).
    last: Option<(f32, f32)>,
    /// The mask changed since the preview was made.
    pub dirty: bool,
}

impl MaskPainter {
    /// Starts from `mask` (the loaded one) or an empty mask of the picture's size.
    pub fn new(width: u32, height: u32, mask: Option<GrayImage>) -> MaskPainter {
        let mask = mask
            .filter(|m| (m.width, m.height) == (width, height))
            .unwrap_or_else(|| GrayImage {
                width,
                height,
                data: vec![0; width as usize * height as usize],
            });
        let radius = (width.max(height) as f32 / 16.0).clamp(2.0, 128.0);
        MaskPainter {
            mask,
            radius,
            erase: false,
            undo: Vec::new(),
            redo: Vec::new(),
            last: None,
            dirty: true,
        }
    }

    /// Whether anything is painted.
    pub fn is_empty(&self) -> bool {
        self.mask.data.iter().all(|&v| v == 0)
    }

    /// A new stroke at `point`: the state before it can be undone.
    pub fn begin_stroke(&mut self, point: (f32, f32)) {
        self.remember();
        self.last = None;
        self.stroke_to(point);
    }

    /// The brush dragged to `point`: a line of dabs from the last point, no gaps.
    pub fn stroke_to(&mut self, point: (f32, f32)) {
        let from = self.last.unwrap_or(point);
        let (dx, dy) = (point.0 - from.0, point.1 - from.1);
        let spacing = (self.radius * 0.35).max(0.5);
        let n = ((dx * dx + dy * dy).sqrt() / spacing).ceil().max(1.0) as usize;
        for i in 1..=n {
            let t = i as f32 / n as f32;
            self.dab(from.0 + dx * t, from.1 + dy * t);
        }
        if self.last.is_none() {
            self.dab(point.0, point.1);
        }
        self.last = Some(point);
        self.dirty = true;
    }

    pub fn end_stroke(&mut self) {
        self.last = None;
    }

    /// Whether a stroke is under way.
    pub fn stroking(&self) -> bool {
        self.last.is_some()
    }

    fn dab(&mut self, cx: f32, cy: f32) {
        let value = if self.erase { 0 } else { 255 };
        let (w, h) = (self.mask.width as i64, self.mask.height as i64);
        let r = self.radius;
        let (x0, x1) = (((cx - r).floor() as i64).max(0), ((cx + r).ceil() as i64).min(w - 1));
        let (y0, y1) = (((cy - r).floor() as i64).max(0), ((cy + r).ceil() as i64).min(h - 1));
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (px, py) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                if px * px + py * py <= r * r {
                    self.mask.data[(y * w + x) as usize] = value;
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.remember();
        self.mask.data.fill(0);
        self.dirty = true;
    }

    pub fn invert(&mut self) {
        self.remember();
        for v in &mut self.mask.data {
            *v = 255 - *v;
        }
        self.dirty = true;
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    pub fn undo(&mut self) {
        if let Some(before) = self.undo.pop() {
            self.redo.push(std::mem::replace(&mut self.mask, before));
            self.dirty = true;
        }
    }

    pub fn redo(&mut self) {
        if let Some(after) = self.redo.pop() {
            self.undo.push(std::mem::replace(&mut self.mask, after));
            self.dirty = true;
        }
    }

    fn remember(&mut self) {
        self.undo.push(self.mask.clone());
        if self.undo.len() > UNDO_LIMIT {
            self.undo.remove(0);
        }
        self.redo.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn painted(p: &MaskPainter) -> usize {
        p.mask.data.iter().filter(|&&v| v == 255).count()
    }

    #[test]
    fn strokes_paint_without_gaps_and_undo_redo_walk_back_and_forth() {
        let mut p = MaskPainter::new(64, 32, None);
        p.radius = 3.0;
        assert!(p.is_empty());
        p.begin_stroke((5.0, 16.0));
        p.stroke_to((58.0, 16.0));
        p.end_stroke();
        // A continuous band along the row: every column from 5 to 58 is painted.
        assert!((5..=58).all(|x| p.mask.data[16 * 64 + x] == 255));
        assert_eq!(p.mask.data[0], 0);
        let stroke = painted(&p);
        p.erase = true;
        p.begin_stroke((30.0, 16.0));
        p.end_stroke();
        assert!(painted(&p) < stroke);
        p.undo();
        assert_eq!(painted(&p), stroke);
        p.undo();
        assert!(p.is_empty() && !p.can_undo());
        p.redo();
        p.redo();
        assert!(painted(&p) < stroke && !p.can_redo());
        p.invert();
        assert!(painted(&p) > 64 * 32 - stroke);
        p.clear();
        assert!(p.is_empty());
        p.undo();
        assert!(!p.is_empty());
    }

    #[test]
    fn a_mask_of_the_pictures_size_is_kept_and_painting_stays_inside() {
        let m = GrayImage {
            width: 4,
            height: 2,
            data: vec![255, 0, 0, 0, 0, 0, 0, 255],
        };
        let mut p = MaskPainter::new(4, 2, Some(m.clone()));
        assert_eq!(p.mask, m);
        // Past every edge: nothing panics, the corner is painted.
        p.begin_stroke((-10.0, -10.0));
        p.stroke_to((100.0, 100.0));
        assert!(painted(&p) >= 2);
        let other = MaskPainter::new(8, 8, Some(m));
        assert!(other.is_empty(), "a mask of another size starts over");
    }
}
