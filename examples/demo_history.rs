//! Fills a data folder with a history of generated-looking pictures, for trying the history
//! view (and taking screenshots) without a real model:
//!
//!     cargo run --example demo_history -- /tmp/lantern-demo 50
//!     LANTERN_DATA_DIR=/tmp/lantern-demo target/debug/lantern
//!
//! Each picture is a small painted landscape (sky, sun, hills, water) whose palette follows
//! its prompt, saved with its parameters like a real result and recorded in the history.

use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};
use lantern::history::{History, NewEntry};
use lantern::output::{GenerationParams, RgbImage, save_png};
use lantern::schedulers::SamplerKind;

const PROMPTS: [(&str, [u8; 3], [u8; 3]); 10] = [
    (
        "a lighthouse on a cliff at dusk, oil painting",
        [250, 140, 90],
        [40, 50, 90],
    ),
    ("a red fox in the snow, watercolour", [230, 235, 245], [200, 90, 40]),
    ("一只红色的狐狸，水墨画", [240, 236, 225], [60, 60, 60]),
    (
        "a castle on a hill, golden hour, concept art",
        [255, 190, 100],
        [90, 60, 50],
    ),
    ("城市夜景，赛博朋克", [30, 20, 70], [230, 60, 200]),
    ("a mountain lake at sunrise, 35mm photo", [250, 200, 170], [40, 90, 120]),
    ("a field of sunflowers, impressionist", [120, 190, 240], [240, 200, 40]),
    ("a koi pond seen from above, ukiyo-e", [40, 110, 120], [240, 120, 50]),
    (
        "a snowy village at night, studio lighting",
        [20, 30, 60],
        [240, 240, 255],
    ),
    ("樱花树下的小屋", [250, 210, 225], [120, 70, 80]),
];

fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    [0, 1, 2].map(|i| (a[i] as f32 * (1.0 - t) + b[i] as f32 * t) as u8)
}

/// A small landscape: a vertical sky gradient, a sun, two rows of hills, a darker foreground.
fn paint(size: u32, sky: [u8; 3], accent: [u8; 3], seed: u64) -> RgbImage {
    let s = size as f32;
    let r = |k: u64| {
        ((seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(k * 1442695040888963407)
            >> 33)
            % 1000) as f32
            / 1000.0
    };
    let (sun_x, sun_y, sun_r) = (
        s * (0.2 + 0.6 * r(1)),
        s * (0.15 + 0.3 * r(2)),
        s * (0.06 + 0.08 * r(3)),
    );
    let (f1, f2, p1, p2) = (
        2.0 + 5.0 * r(4),
        5.0 + 7.0 * r(5),
        std::f32::consts::TAU * r(6),
        std::f32::consts::TAU * r(7),
    );
    let mut data = Vec::with_capacity((size * size * 3) as usize);
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 / s, y as f32 / s);
            let mut c = mix(sky, [255, 255, 255], fy * 0.6);
            let d = ((x as f32 - sun_x).powi(2) + (y as f32 - sun_y).powi(2)).sqrt();
            if d < sun_r {
                c = mix([255, 240, 190], accent, 0.25);
            } else if d < sun_r * 2.2 {
                c = mix(c, [255, 230, 170], 0.45 * (1.0 - (d - sun_r) / (sun_r * 1.2)));
            }
            let hill1 = 0.55 + 0.08 * (fx * f1 + p1).sin();
            let hill2 = 0.7 + 0.06 * (fx * f2 + p2).sin();
            if fy > hill1 {
                c = mix(accent, [20, 20, 30], 0.45 + 0.3 * (fy - hill1));
            }
            if fy > hill2 {
                c = mix(accent, [10, 10, 15], 0.75 + 0.2 * (fy - hill2));
            }
            data.extend_from_slice(&c);
        }
    }
    RgbImage::from_raw(size, size, data).expect("size matches")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "lantern-demo".into()));
    let count: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(50);
    let outputs = dir.join("outputs");
    let history = History::open(&dir.join("history.sqlite3")).expect("open the history");
    let now = Timestamp::now();
    for i in 0..count {
        let (prompt, sky, accent) = PROMPTS[(i % PROMPTS.len() as u64) as usize];
        let seed = 1_000_000 + i * 7919;
        let params = GenerationParams {
            prompt: prompt.into(),
            negative_prompt: "blurry, lowres, watermark".into(),
            steps: 20 + (i % 4) as u32 * 5,
            sampler: SamplerKind::ALL[(i % 10) as usize],
            guidance: 7.0,
            seed,
            width: 512,
            height: 512,
            model: if i % 3 == 0 {
                "sdxl-base"
            } else {
                "stable-diffusion-v1-5"
            }
            .into(),
            ..Default::default()
        };
        let path = save_png(&outputs, &paint(512, sky, accent, seed), &params, None).expect("save");
        let age = SignedDuration::from_mins(((count - i) * 90) as i64);
        let entry = NewEntry {
            created_at: now - age,
            duration_ms: Some(4000 + i * 37),
            favourite: i % 7 == 3,
            ..NewEntry::new(params, path)
        };
        history.insert(&entry).expect("record");
    }
    println!("{count} entries in {}", dir.display());
}
