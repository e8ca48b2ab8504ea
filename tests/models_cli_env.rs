//! The command line path with the real environment: `HF_ENDPOINT` pointing at a fake Hub on
//! 127.0.0.1, `HF_TOKEN` sent, `HF_HUB_CACHE` used, then `models list --json` finding the result.
//! One test in this binary, so changing the process environment cannot race another test.

mod common;

use common::{Behaviour, COMMIT, FakeHub, REPO_ID, fixture_dir, fixture_files};
use lantern::cli::models::{DownloadArgs, ListArgs, run_download, run_list};

#[test]
fn hf_endpoint_token_and_cache_come_from_the_environment() {
    let hub = FakeHub::sd1_tiny(Behaviour {
        required_token: Some("hf_env_token".into()),
        redirect_lfs: true,
        ..Behaviour::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    // SAFETY: this binary runs this single test; no other thread reads the environment yet.
    unsafe {
        std::env::set_var("HF_ENDPOINT", hub.url());
        std::env::set_var("HF_TOKEN", "hf_env_token");
        std::env::set_var("HF_HUB_CACHE", cache.path());
        std::env::set_var("LANTERN_DATA_DIR", data.path());
    }

    let args = DownloadArgs {
        name_or_repo: REPO_ID.into(),
        revision: None,
        cache_dir: None,
        quiet: true,
    };
    let snapshot = run_download(&args).expect("download through the CLI");
    assert_eq!(
        snapshot,
        cache
            .path()
            .join("models--lantern-test--sd1-tiny/snapshots")
            .join(COMMIT)
    );
    for (path, content) in fixture_files(&fixture_dir("sd1-tiny")) {
        assert_eq!(std::fs::read(snapshot.join(&path)).unwrap(), content, "{path}");
    }
    let seen = hub.seen();
    assert!(seen.iter().any(|s| s.path.starts_with("/api/models/")));
    assert!(
        seen.iter()
            .filter(|s| !s.path.starts_with("/cdn/"))
            .all(|s| s.authorization.as_deref() == Some("Bearer hf_env_token")),
        "{seen:?}"
    );

    let mut out = Vec::new();
    run_list(
        &ListArgs {
            json: true,
            folders: vec![],
        },
        &mut out,
    )
    .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let model = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == REPO_ID)
        .unwrap_or_else(|| panic!("not listed: {listed}"));
    assert_eq!(model["family"], "sd1");
    assert_eq!(model["source"]["kind"], "hf-cache");
    assert_eq!(model["source"]["repo_id"], REPO_ID);
    assert_eq!(model["status"]["state"], "complete");

    let mut table = Vec::new();
    run_list(&ListArgs::default(), &mut table).unwrap();
    let table = String::from_utf8(table).unwrap();
    assert!(
        table.contains(REPO_ID) && table.contains("SD 1.x") && table.contains("HF cache"),
        "{table}"
    );

    // A name that is neither in the catalog nor a repo id is refused with the choices.
    let bad = DownloadArgs {
        name_or_repo: "sd-turbo-xl".into(),
        ..args
    };
    let err = run_download(&bad).unwrap_err().to_string();
    assert!(err.contains("sd-turbo, sd15, sd21, sdxl, sdxl-turbo"), "{err}");
}
