//! Downloads against a fake Hub on 127.0.0.1 serving tests/fixtures/sd1-tiny as a repo.

mod common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Behaviour, COMMIT, FakeHub, REPO_ID, fixture_dir, fixture_files};
use lantern::Error;
use lantern::error::{Failure, Kind};
use lantern::hub::{
    CancelFlag, DiscoveryRoots, DownloadEvent, DownloadRequest, Family, FileSelection, HubConfig, ModelSource,
    ModelStatus, Precision, discover, download, spawn_download,
};

const UNET: &str = "unet/diffusion_pytorch_model.safetensors";
const VAE: &str = "vae/diffusion_pytorch_model.safetensors";

fn config(endpoint: String, cache: &Path) -> HubConfig {
    HubConfig {
        endpoint,
        token: None,
        cache_dir: cache.to_path_buf(),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
    }
}

fn run(config: &HubConfig, cancel: &CancelFlag) -> (lantern::Result<PathBuf>, Vec<DownloadEvent>) {
    let mut events = Vec::new();
    let result = download(config, &DownloadRequest::repo(REPO_ID), cancel, &mut |e| events.push(e));
    (result, events)
}

fn repo_dir(cache: &Path) -> PathBuf {
    cache.join("models--lantern-test--sd1-tiny")
}

fn snapshot_dir(cache: &Path) -> PathBuf {
    repo_dir(cache).join("snapshots").join(COMMIT)
}

/// Every fixture file is in the snapshot, byte for byte, as a relative link into blobs/.
fn assert_snapshot_matches_fixture(cache: &Path) {
    let snapshot = snapshot_dir(cache);
    for (path, content) in fixture_files(&fixture_dir("sd1-tiny")) {
        let file = snapshot.join(&path);
        assert_eq!(fs::read(&file).unwrap(), content, "{path} differs");
        let link = fs::read_link(&file).unwrap_or_else(|_| panic!("{path} is not a symlink"));
        assert!(
            link.is_relative() && link.starts_with(".."),
            "{path} -> {}",
            link.display()
        );
        assert!(
            fs::canonicalize(&file)
                .unwrap()
                .starts_with(fs::canonicalize(repo_dir(cache).join("blobs")).unwrap())
        );
    }
    let leftovers: Vec<_> = fs::read_dir(repo_dir(cache).join("blobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".incomplete"))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
}

fn fixture_total() -> u64 {
    fixture_files(&fixture_dir("sd1-tiny"))
        .iter()
        .map(|(_, c)| c.len() as u64)
        .sum()
}

fn resolve_requests(hub: &FakeHub, path: &str) -> Vec<common::Seen> {
    let needle = format!("/resolve/{COMMIT}/{path}");
    let sha: HashMap<String, String> = hub.files().into_iter().map(|f| (f.path, f.sha256)).collect();
    hub.seen()
        .into_iter()
        .filter(|s| s.path.ends_with(&needle) || sha.get(path).is_some_and(|h| s.path == format!("/cdn/{h}")))
        .collect()
}

#[test]
fn full_download_is_byte_identical_and_discovered_in_the_cache() {
    let hub = FakeHub::sd1_tiny(Behaviour {
        redirect_lfs: true,
        ..Behaviour::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let config = config(hub.url(), cache.path());

    let (result, events) = run(&config, &CancelFlag::new());
    let snapshot = result.expect("download succeeds");
    assert_eq!(snapshot, snapshot_dir(cache.path()));
    assert_snapshot_matches_fixture(cache.path());
    assert_eq!(
        fs::read_to_string(repo_dir(cache.path()).join("refs/main")).unwrap(),
        COMMIT
    );

    // Only the diffusers components were fetched, LFS files through the CDN redirect.
    let fetched: HashSet<String> = hub.seen().into_iter().map(|s| s.path).collect();
    for unwanted in [
        "v1-5-pruned-emaonly.safetensors",
        "unet/diffusion_pytorch_model.bin",
        "safety_checker",
        "README.md",
    ] {
        assert!(!fetched.iter().any(|p| p.contains(unwanted)), "fetched {unwanted}");
    }
    assert!(
        fetched.iter().any(|p| p.starts_with("/cdn/")),
        "LFS redirect not exercised"
    );

    // Events: planned first, finished last, progress reaching the total.
    let total = fixture_total();
    assert!(matches!(&events[0], DownloadEvent::Planned { total: t, already: 0, files: 12, .. } if *t == total));
    // The fake Hub gives a sha256 for its LFS files (the three .safetensors) only.
    assert!(
        matches!(&events[0], DownloadEvent::Planned { size_only: 9, .. }),
        "{:?}",
        events[0]
    );
    assert!(matches!(events.last(), Some(DownloadEvent::Finished { .. })));
    let last_progress = events.iter().rev().find_map(|e| match e {
        DownloadEvent::Progress(p) => Some(p.clone()),
        _ => None,
    });
    let last_progress = last_progress.expect("progress events");
    assert_eq!((last_progress.done, last_progress.total), (total, total));
    assert!(last_progress.bytes_per_sec > 0.0);

    // Discovery lists it as an SD 1.x model from the HF cache, used in place.
    let roots = DiscoveryRoots {
        hf_caches: vec![cache.path().to_path_buf()],
        ..DiscoveryRoots::default()
    };
    let models = discover(&roots);
    assert_eq!(models.len(), 1, "{models:?}");
    let m = &models[0];
    assert_eq!(m.name, REPO_ID);
    assert_eq!(m.path, snapshot);
    assert_eq!(m.family, Family::Sd1);
    assert_eq!(m.precision, Precision::Fp32);
    assert_eq!(m.status, ModelStatus::Complete);
    assert_eq!(m.size.0, total);
    assert!(
        matches!(&m.source, ModelSource::HfCache { repo_id, commit, refs } if repo_id == REPO_ID && commit == COMMIT && refs == &["main"])
    );

    // The downloaded snapshot (symlinks into blobs/) loads and generates an image, and it is
    // diffusers' image for the same latents.
    let model = lantern::model::LoadedModel::load(&snapshot, Default::default(), &mut |_| {}).unwrap();
    let cases: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(common::fixture_dir("reference/sd1/cases.json")).unwrap()).unwrap();
    let case = &cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["file"] == "euler-sq-g7.png")
        .unwrap();
    let latents = candle_core::safetensors::load(
        common::fixture_dir(case["latents"].as_str().unwrap()),
        &candle_core::Device::Cpu,
    )
    .unwrap()["latents"]
        .clone();
    let request = lantern::pipeline::Request {
        init_latents: Some(latents),
        ..lantern::pipeline::Request::new(lantern::recipe::Recipe {
            prompt: case["prompt"].as_str().unwrap().into(),
            negative_prompt: case["negative_prompt"].as_str().unwrap_or_default().into(),
            steps: case["steps"].as_u64().unwrap() as u32,
            guidance: case["guidance"].as_f64().unwrap(),
            width: case["width"].as_u64().unwrap() as u32,
            height: case["height"].as_u64().unwrap() as u32,
            seed: 1,
            sampler: lantern::schedulers::SamplerKind::Euler,
            // diffusers' reference reads the prompt as plain text.
            prompt_syntax: lantern::recipe::PromptSyntax::Plain,
            ..Default::default()
        })
    };
    let mut image = None;
    lantern::pipeline::generate(&model, &request, &Default::default(), &mut |e| {
        if let lantern::pipeline::Event::ImageReady(g) = e {
            image = Some(g.image);
        }
    })
    .unwrap();
    let image = image.expect("an image");
    let reference = lantern::output::decode_png_file(&common::fixture_dir("reference/sd1/euler-sq-g7.png")).unwrap();
    let max = image
        .data
        .iter()
        .zip(&reference.data)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(max <= 3, "downloaded model differs from diffusers by {max}/255");

    // A second run finds everything in place and fetches nothing.
    let before = hub.seen().len();
    let (again, events) = run(&config, &CancelFlag::new());
    again.unwrap();
    let new: Vec<_> = hub.seen()[before..].to_vec();
    assert!(new.iter().all(|s| s.path.starts_with("/api/")), "refetched: {new:?}");
    assert!(
        events
            .iter()
            .filter(|e| matches!(e, DownloadEvent::FileDone { skipped: true, .. }))
            .count()
            == 12
    );
}

#[test]
fn dropped_connection_resumes_with_a_range_request() {
    let cut = 1_000_000;
    let hub = FakeHub::sd1_tiny(Behaviour {
        drop_after: HashMap::from([(UNET.to_owned(), cut)]),
        ..Behaviour::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let config = config(hub.url(), cache.path());

    let (first, _) = run(&config, &CancelFlag::new());
    let err = first.expect_err("the connection was cut");
    assert!(matches!(err, Error::Network(_)), "{err:?}");
    assert_eq!(
        err.kind(),
        Kind::Network,
        "a dropped connection is not offline: {err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(UNET) && msg.contains("resume") && !msg.contains('\n'),
        "{msg}"
    );

    let unet_sha = hub.files().into_iter().find(|f| f.path == UNET).unwrap().sha256;
    let partial = repo_dir(cache.path())
        .join("blobs")
        .join(format!("{unet_sha}.incomplete"));
    assert_eq!(
        fs::metadata(&partial).unwrap().len(),
        cut,
        "partial file keeps what arrived"
    );

    // Meanwhile discovery reports the snapshot as incomplete, saying what is missing.
    let roots = DiscoveryRoots {
        hf_caches: vec![cache.path().to_path_buf()],
        ..DiscoveryRoots::default()
    };
    let models = discover(&roots);
    match &models[..] {
        [m] => match &m.status {
            ModelStatus::Incomplete(problems) => {
                assert!(problems.iter().any(|p| p.contains("unet")), "{problems:?}")
            }
            ModelStatus::Complete => panic!("interrupted download listed as complete"),
        },
        other => panic!("{other:?}"),
    }

    let (second, events) = run(&config, &CancelFlag::new());
    second.expect("resumed download succeeds");
    assert_snapshot_matches_fixture(cache.path());
    let ranges: Vec<Option<String>> = resolve_requests(&hub, UNET).into_iter().map(|s| s.range).collect();
    assert_eq!(ranges, [None, Some(format!("bytes={cut}-"))]);
    assert!(events.contains(&DownloadEvent::FileStarted {
        path: UNET.into(),
        size: fs::metadata(fixture_dir("sd1-tiny").join(UNET)).unwrap().len(),
        resume_from: cut,
    }));
}

#[test]
fn cancelled_download_keeps_its_partial_file_and_resumes() {
    let hub = FakeHub::sd1_tiny(Behaviour {
        slow: HashSet::from([UNET.to_owned()]),
        redirect_lfs: true,
        ..Behaviour::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let config = config(hub.url(), cache.path());

    // Cancel from the progress callback once part of the UNet has arrived, as the GUI would.
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    let mut cancelled_at = 0;
    let result = download(&config, &DownloadRequest::repo(REPO_ID), &cancel, &mut |e| {
        if let DownloadEvent::Progress(p) = e
            && p.file == UNET
            && p.file_done > 300_000
            && !flag.is_cancelled()
        {
            cancelled_at = p.file_done;
            flag.cancel();
        }
    });
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert!(cancelled_at > 0);
    let unet_sha = hub.files().into_iter().find(|f| f.path == UNET).unwrap().sha256;
    let partial = repo_dir(cache.path())
        .join("blobs")
        .join(format!("{unet_sha}.incomplete"));
    let kept = fs::metadata(&partial).unwrap().len();
    assert!(kept >= cancelled_at && kept < 4_271_040, "kept {kept}");

    // Resume on a background thread through the GUI-facing handle.
    let handle = spawn_download(config.clone(), DownloadRequest::repo(REPO_ID));
    let events: Vec<DownloadEvent> = handle.events.iter().collect();
    handle.join().expect("resumed");
    assert!(matches!(events.last(), Some(DownloadEvent::Finished { .. })));
    assert_snapshot_matches_fixture(cache.path());
    let ranges: Vec<Option<String>> = resolve_requests(&hub, UNET).into_iter().map(|s| s.range).collect();
    assert!(ranges.contains(&Some(format!("bytes={kept}-"))), "{ranges:?}");
}

#[test]
fn file_with_wrong_sha256_is_rejected_and_not_left_in_the_snapshot() {
    let hub = FakeHub::sd1_tiny(Behaviour {
        corrupt: HashSet::from([VAE.to_owned()]),
        ..Behaviour::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let config = config(hub.url(), cache.path());

    let (result, _) = run(&config, &CancelFlag::new());
    let err = result.expect_err("corrupt content must be rejected");
    let msg = err.to_string();
    assert!(matches!(err, Error::Download(_)), "{err:?}");
    assert_eq!(err.kind(), Kind::Checksum, "{err:?}");
    assert!(
        msg.contains(VAE) && msg.contains("sha256") && msg.contains("deleted"),
        "{msg}"
    );

    let vae_sha = hub.files().into_iter().find(|f| f.path == VAE).unwrap().sha256;
    let blobs = repo_dir(cache.path()).join("blobs");
    assert!(!blobs.join(&vae_sha).exists(), "corrupt blob kept");
    assert!(
        !blobs.join(format!("{vae_sha}.incomplete")).exists(),
        "corrupt partial kept"
    );
    assert!(
        fs::symlink_metadata(snapshot_dir(cache.path()).join(VAE)).is_err(),
        "corrupt file linked into the snapshot"
    );
}

#[test]
fn closed_port_fails_fast_with_one_plain_line() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // dropped: nothing listens there now
    let cache = tempfile::tempdir().unwrap();
    let config = HubConfig {
        connect_timeout: Duration::from_secs(5),
        ..config(format!("http://127.0.0.1:{port}"), cache.path())
    };
    let start = Instant::now();
    let (result, events) = run(&config, &CancelFlag::new());
    let elapsed = start.elapsed();
    let err = result.expect_err("nothing listens");
    let msg = err.to_string();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(matches!(err, Error::Network(_)), "{err:?}");
    assert_eq!(err.kind(), Kind::Offline, "{err:?}");
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("connection refused"),
        "{msg}"
    );
    assert!(msg.contains("HF_ENDPOINT") && !msg.contains('\n'), "{msg}");
    assert!(events.is_empty());

    // On a background thread the failure keeps its kind and its line.
    let handle = spawn_download(config, DownloadRequest::repo(REPO_ID));
    let events: Vec<DownloadEvent> = handle.events.iter().collect();
    assert!(handle.join().is_err());
    assert_eq!(events, [DownloadEvent::Failed(Failure::new(Kind::Offline, msg))]);
}

#[test]
fn token_is_sent_and_its_absence_is_explained() {
    let hub = FakeHub::sd1_tiny(Behaviour {
        required_token: Some("hf_test_secret".into()),
        redirect_lfs: true,
        ..Behaviour::default()
    });
    let cache = tempfile::tempdir().unwrap();

    let (denied, _) = run(&config(hub.url(), cache.path()), &CancelFlag::new());
    let denied = denied.expect_err("401 without a token");
    assert_eq!(denied.kind(), Kind::Unauthorized, "{denied:?}");
    let msg = denied.to_string();
    assert!(msg.contains("401") && msg.contains("HF_TOKEN"), "{msg}");

    let with_token = HubConfig {
        token: Some("hf_test_secret".into()),
        ..config(hub.url(), cache.path())
    };
    let (ok, _) = run(&with_token, &CancelFlag::new());
    ok.expect("download with token");
    let seen = hub.seen();
    let authorized = |p: &str| {
        seen.iter()
            .any(|s| s.path.starts_with(p) && s.authorization.as_deref() == Some("Bearer hf_test_secret"))
    };
    assert!(authorized("/api/models/"));
    assert!(authorized(&format!("/{REPO_ID}/resolve/")));
    assert_snapshot_matches_fixture(cache.path());
}

#[test]
fn not_enough_disk_space_is_refused_before_fetching() {
    let hub = FakeHub::sd1_tiny(Behaviour::default());
    let cache = tempfile::tempdir().unwrap();
    let mut request = DownloadRequest::repo(REPO_ID);
    request.keep_free = u64::MAX / 4;
    let err = download(
        &config(hub.url(), cache.path()),
        &request,
        &CancelFlag::new(),
        &mut |_| {},
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::DiskSpace { .. }), "{err:?}");
    assert_eq!(err.kind(), Kind::DiskFull);
    assert!(
        msg.starts_with("not enough disk space in") && msg.contains("only") && msg.contains("free"),
        "{msg}"
    );
    assert!(
        hub.seen().iter().all(|s| s.path.starts_with("/api/")),
        "fetched files anyway"
    );
}

#[test]
fn exact_file_lists_are_checked_against_the_repo() {
    let hub = FakeHub::sd1_tiny(Behaviour::default());
    let cache = tempfile::tempdir().unwrap();
    let request = DownloadRequest {
        repo_id: REPO_ID.into(),
        revision: "main".into(),
        files: FileSelection::Exact(vec![
            "model_index.json".into(),
            "unet/diffusion_pytorch_model.fp16.safetensors".into(),
        ]),
        keep_free: 0,
    };
    let err = download(
        &config(hub.url(), cache.path()),
        &request,
        &CancelFlag::new(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("has no file `unet/diffusion_pytorch_model.fp16.safetensors`"),
        "{err}"
    );
    assert_eq!(err.kind(), Kind::NotFound, "{err:?}");

    let missing_repo = DownloadRequest::repo("lantern-test/does-not-exist");
    let err = download(
        &config(hub.url(), cache.path()),
        &missing_repo,
        &CancelFlag::new(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("not found (HTTP 404)"), "{err}");
    assert_eq!(err.kind(), Kind::NotFound, "{err:?}");
}

/// The catalog's `taesd` (a preview decoder, madebyollin/taesd) downloads exactly its two
/// diffusers files, never the pickles or the single files beside them, and the snapshot is
/// found as the TAESD of SD 1.x/2.x (not as a model) and decodes as the fixture does.
#[test]
fn the_catalogs_taesd_downloads_and_pairs_with_its_family() {
    use lantern::hub::{Catalog, TaesdSpace, discover_taesds, taesd_for};
    let taesd = fixture_dir("taesd/taesd-tiny");
    let mut files = fixture_files(&taesd);
    // What the real repo also holds.
    files.push(("README.md".into(), b"# taesd".to_vec()));
    files.push(("taesd_decoder.pth".into(), vec![1; 500]));
    files.push(("diffusion_pytorch_model.bin".into(), vec![2; 500]));
    let hub = FakeHub::start_as(
        "madebyollin/taesd",
        files,
        Behaviour {
            redirect_lfs: true,
            ..Behaviour::default()
        },
    );
    let cache = tempfile::tempdir().unwrap();
    let catalog = Catalog::builtin().unwrap();
    let request = DownloadRequest::resolve("taesd", &catalog).unwrap();
    assert_eq!(request.repo_id, "madebyollin/taesd");
    let mut events = Vec::new();
    let snapshot = download(
        &config(hub.url(), cache.path()),
        &request,
        &CancelFlag::new(),
        &mut |e| events.push(e),
    )
    .unwrap();
    assert!(matches!(events.last(), Some(DownloadEvent::Finished { .. })));
    let mut fetched: Vec<String> = fs::read_dir(&snapshot)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fetched.sort();
    assert_eq!(fetched, ["config.json", "diffusion_pytorch_model.safetensors"]);
    for name in &fetched {
        assert_eq!(
            fs::read(snapshot.join(name)).unwrap(),
            fs::read(taesd.join(name)).unwrap()
        );
    }
    let seen: Vec<String> = hub.seen().into_iter().map(|s| s.path).collect();
    assert!(
        !seen
            .iter()
            .any(|p| p.contains(".pth") || p.contains(".bin") || p.contains("taesd_")),
        "{seen:?}"
    );

    let roots = DiscoveryRoots {
        hf_caches: vec![cache.path().to_path_buf()],
        ..DiscoveryRoots::default()
    };
    assert!(discover(&roots).is_empty(), "a TAESD is no model");
    let found = discover_taesds(&roots);
    let paired = taesd_for(&found, lantern::hub::BaseArch::Sd1).expect("paired with SD 1.x");
    assert_eq!(
        (paired.name.as_str(), paired.space),
        ("madebyollin/taesd", TaesdSpace::Sd)
    );
    assert!(taesd_for(&found, lantern::hub::BaseArch::Sdxl).is_none());
    let cpu = candle_core::Device::Cpu;
    let z = candle_core::Tensor::ones((1, 4, 2, 3), candle_core::DType::F32, &cpu).unwrap();
    let ours = lantern::model::taesd::load_decoder(&paired.path, candle_core::DType::F32, &cpu)
        .unwrap()
        .decode(&z)
        .unwrap();
    let fixture = lantern::model::taesd::load_decoder(&taesd, candle_core::DType::F32, &cpu)
        .unwrap()
        .decode(&z)
        .unwrap();
    let d = (ours - fixture)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(d, 0.0);
}
