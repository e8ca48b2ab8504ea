//! Starting from a picture in the window (kittest): drop a picture, paint a mask over it with
//! the brush, undo and redo, generate; the picture inpaints, keeps the unmasked pixels, is
//! recorded with its start pictures, and "use these settings" brings them back.

mod common;
mod support;

use std::sync::Arc;

use common::gui::{DroppedPath, wait_for, window};
use egui::{Event, PointerButton, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lantern::gui::LanternApp;
use lantern::gui::history_state::{DetailImage, HistoryAction};
use lantern::gui::state::{Action, ModelStatus};
use lantern::source::InputStore;
use support::fixtures;

fn drag(h: &mut Harness<'_, LanternApp>, from: Pos2, to: Pos2) {
    let input = h.input_mut();
    input.events.push(Event::PointerMoved(from));
    h.step();
    h.input_mut().events.push(Event::PointerButton {
        pos: from,
        button: PointerButton::Primary,
        pressed: true,
        modifiers: Default::default(),
    });
    h.step();
    for i in 1..=8 {
        let t = i as f32 / 8.0;
        h.input_mut().events.push(Event::PointerMoved(from + (to - from) * t));
        h.step();
    }
    h.input_mut().events.push(Event::PointerButton {
        pos: to,
        button: PointerButton::Primary,
        pressed: false,
        modifiers: Default::default(),
    });
    h.step();
}

#[test]
fn drop_a_picture_paint_a_mask_and_inpaint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = window(tmp.path())
        .model(Some(fixtures().join("sd1-tiny")))
        .size(1200.0, 800.0)
        .build();
    wait_for(&mut h, "model load", |a| matches!(a.state.model, ModelStatus::Ready(_)));
    {
        let p = &mut h.state_mut().state.settings.params;
        (p.width, p.height, p.steps, p.prompt) = (128, 128, 4, "a small boat".into());
        p.strength = 1.0;
    }
    let picture = fixtures().join("reference/img2img/wide.png");
    h.input_mut().dropped_files.push(Arc::new(DroppedPath(picture.clone())));
    h.step();
    wait_for(&mut h, "the start picture", |a| a.state.start.picture.is_some());
    // The size takes the picture's shape at about the area set before.
    let p = &h.state().state.settings.params;
    assert_eq!((p.width, p.height), (160, 104), "72×48 at about 128×128's area");
    assert!(p.init_image.is_some() && p.mask.is_none());
    h.get_by_label_contains("Start from a picture (img2img)");

    h.get_by_label("✏ Paint mask").click();
    h.run_steps(2);
    let rect = h
        .state()
        .state
        .start
        .painter_rect
        .expect("the painter's canvas is shown");
    // A stroke across the left half, then one more that is undone and redone.
    let at = |fx: f32, fy: f32| Pos2::new(rect.min.x + rect.width() * fx, rect.min.y + rect.height() * fy);
    drag(&mut h, at(0.1, 0.5), at(0.4, 0.5));
    wait_for(&mut h, "the mask kept", |a| a.state.settings.params.mask.is_some());
    let first = h.state().state.settings.params.mask.clone();
    drag(&mut h, at(0.7, 0.2), at(0.7, 0.8));
    wait_for(&mut h, "the second stroke kept", |a| {
        a.state.settings.params.mask != first
    });
    h.get_by_label("⟲ Undo").click();
    wait_for(&mut h, "the undo kept", |a| a.state.settings.params.mask == first);
    h.get_by_label("⟳ Redo").click();
    wait_for(&mut h, "the redo kept", |a| a.state.settings.params.mask != first);
    h.get_by_label("⟲ Undo").click();
    wait_for(&mut h, "undone again", |a| a.state.settings.params.mask == first);
    h.get_by_label("✔ Done").click();
    h.run_steps(2);
    assert!(h.state().state.start.painter.is_none());
    let mask_hash = h.state().state.settings.params.mask.clone().unwrap();
    let store = InputStore::new(tmp.path().join("inputs"));
    let mask = store.get_mask(&mask_hash).unwrap();
    // Painted where the stroke went (picture pixels), not on the right.
    let (w, hgt) = (mask.width as usize, mask.height as usize);
    assert_eq!((w, hgt), (72, 48), "the mask has the picture's own size");
    assert_eq!(mask.data[hgt / 2 * w + w / 4], 255);
    assert_eq!(mask.data[hgt / 5 * w + w * 7 / 10], 0, "the undone stroke is gone");

    h.get_by_label_contains("Generate").click();
    h.step();
    wait_for(&mut h, "the inpainted picture", |a| {
        a.is_idle() && !a.state.images.is_empty()
    });
    let app = h.state();
    let shown = &app.state.images[0];
    assert_eq!((shown.pixels.width, shown.pixels.height), (160, 104));
    assert_eq!(shown.params.mask.as_deref(), Some(mask_hash.as_str()));
    let text = lantern::output::read_parameters_file(shown.path.as_ref().unwrap())
        .unwrap()
        .unwrap();
    assert!(text.contains("Denoising strength: 1, Mask blur: 4"), "{text}");
    // The right edge is far from the mask: kept exactly (the picture stretched to 160×104).
    let source = lantern::source::SourceImages {
        image: lantern::source::read_init_image(&picture).unwrap(),
        mask: Some(mask),
    };
    let prepared = lantern::source::prepare::prepare(&source, 160, 104, Default::default(), 4).unwrap();
    let x = 157;
    for y in [5u32, 52, 100] {
        assert_eq!(shown.pixels.pixel(x, y), prepared.image.pixel(x, y), "({x}, {y})");
    }
    let left = shown.pixels.pixel(40, 52) != prepared.image.pixel(40, 52);
    assert!(left, "the masked part is repainted");

    // Clearing goes back to text-to-image; restoring the picture's settings brings both back.
    let params = shown.params.clone();
    h.get_by_label("✖ Clear").click();
    h.step();
    assert!(h.state().state.settings.params.init_image.is_none());
    assert!(h.state().state.start.picture.is_none());
    h.state_mut().use_settings(&params);
    wait_for(&mut h, "the restored start", |a| a.state.start.picture.is_some());
    assert!(h.state().state.start.has_mask());

    // The history's detail panel shows what the picture started from.
    let history = lantern::history::History::open(&tmp.path().join("history.sqlite3")).unwrap();
    let entry = history.list(&Default::default()).unwrap().remove(0);
    assert_eq!(entry.params.mask.as_deref(), Some(mask_hash.as_str()));
    h.state_mut()
        .handle_action(Action::History(HistoryAction::ShowHistory(true)));
    h.state_mut()
        .handle_action(Action::History(HistoryAction::Open(Box::new(entry))));
    wait_for(&mut h, "the start picture in the detail", |a| {
        matches!(a.state.history.detail_start, DetailImage::Ready(_))
    });
    h.run_steps(2);
    h.get_by_label("Started from (red: the mask)");
}

/// Hires fix from the window: switched on in its section, the picture comes out at the
/// larger size with A1111's fields, the heading says the size.
#[test]
fn hires_fix_in_the_window() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = window(tmp.path())
        .model(Some(fixtures().join("sd1-tiny")))
        .size(1200.0, 900.0)
        .build();
    wait_for(&mut h, "model load", |a| matches!(a.state.model, ModelStatus::Ready(_)));
    {
        let p = &mut h.state_mut().state.settings.params;
        (p.width, p.height, p.steps, p.prompt) = (64, 64, 3, "a small boat".into());
    }
    h.run_steps(2);
    h.get_by_label("Hires fix").click();
    // The section opens with an animation.
    h.run_steps(10);
    h.get_by_label("Make it larger with a second pass").click();
    h.run_steps(2);
    assert!(h.state().state.settings.params.hires.is_some());
    h.get_by_label_contains("Hires fix (on: 128×128)");
    h.get_by_label_contains("Generate").click();
    h.step();
    wait_for(&mut h, "the hires picture", |a| {
        a.is_idle() && !a.state.images.is_empty()
    });
    let shown = &h.state().state.images[0];
    assert_eq!((shown.pixels.width, shown.pixels.height), (128, 128));
    let text = lantern::output::read_parameters_file(shown.path.as_ref().unwrap())
        .unwrap()
        .unwrap();
    assert!(
        text.contains("Size: 64x64") && text.contains("Hires upscale: 2, Hires upscaler: Latent"),
        "{text}"
    );
}

/// The outpaint arrows: each extends the start picture's canvas on its side, masked for
/// painting, and the size takes the new shape.
#[test]
fn outpaint_arrows_extend_the_canvas() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = window(tmp.path()).size(1200.0, 900.0).build();
    h.step();
    let picture = fixtures().join("reference/img2img/wide.png");
    h.input_mut().dropped_files.push(Arc::new(DroppedPath(picture)));
    h.step();
    wait_for(&mut h, "the start picture", |a| a.state.start.picture.is_some());
    h.state_mut().state.start.extend_px = 24;
    h.run_steps(2);
    h.get_by_label("⏵").click();
    wait_for(&mut h, "the wider canvas", |a| {
        a.state
            .start
            .picture
            .as_ref()
            .is_some_and(|p| p.images.image.width == 96)
    });
    h.get_by_label("⏶").click();
    wait_for(&mut h, "the taller canvas", |a| {
        a.state
            .start
            .picture
            .as_ref()
            .is_some_and(|p| p.images.image.height == 72)
    });
    let app = h.state();
    let images = &app.state.start.picture.as_ref().unwrap().images;
    let mask = images.mask.as_ref().expect("outpainting masks the new bands");
    assert_eq!(mask.data[0], 255, "the new top-left corner is painted");
    assert_eq!(
        mask.data[(50 * 96 + 20) as usize],
        0,
        "the middle of the original is kept"
    );
    assert!(app.state.settings.params.mask.is_some());
    let status = app.state.status.as_ref().unwrap().text.clone();
    assert!(status.contains("96×72"), "{status}");
}

/// Ctrl+V with a picture on the clipboard starts from it; with a picture file's path (as a
/// file manager copies it) too, and the prompt box does not get the path.
#[test]
fn pasting_a_picture_or_its_path_starts_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = window(tmp.path()).size(1200.0, 900.0).build();
    h.run_steps(2);
    let image = egui::ColorImage::from_rgb([24, 16], &vec![200u8; 24 * 16 * 3]);
    h.input_mut().events.push(Event::PasteImage(Arc::new(image)));
    h.step();
    wait_for(&mut h, "the pasted picture", |a| a.state.start.picture.is_some());
    let size = {
        let p = &h.state().state.start.picture.as_ref().unwrap().images.image;
        (p.width, p.height, p.pixel(3, 3))
    };
    assert_eq!(size, (24, 16, [200, 200, 200]));
    let path = fixtures().join("reference/img2img/wide.png");
    let uri = url::Url::from_file_path(&path).unwrap().to_string();
    h.input_mut().events.push(Event::Paste(uri));
    h.step();
    wait_for(&mut h, "the pasted file", |a| {
        a.state
            .start
            .picture
            .as_ref()
            .is_some_and(|p| p.images.image.width == 72)
    });
    assert!(
        h.state().state.settings.params.prompt.is_empty(),
        "the path was not pasted as text"
    );
}
