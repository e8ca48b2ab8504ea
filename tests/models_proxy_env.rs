//! Downloads behind a proxy, with the real environment: `HTTP_PROXY` / `http_proxy` route the
//! requests through an HTTP proxy on 127.0.0.1 (the fake Hub answering absolute-URI requests as
//! a proxy does), and `NO_PROXY` / `no_proxy` send named hosts direct.
//! One test in this binary, so changing the process environment cannot race another test.

mod common;

use common::{Behaviour, FakeHub, REPO_ID};
use lantern::cli::models::{DownloadArgs, run_download};

const HOST: &str = "hub.lantern-proxy-test.invalid";

fn set(vars: &[(&str, Option<&str>)]) {
    for (k, v) in vars {
        // SAFETY: this binary runs this single test; no other thread reads the environment.
        unsafe {
            match v {
                Some(v) => std::env::set_var(k, v),
                None => std::env::remove_var(k),
            }
        }
    }
}

fn download(cache: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    set(&[("HF_HUB_CACHE", Some(cache.to_str().unwrap()))]);
    run_download(&DownloadArgs {
        name_or_repo: REPO_ID.into(),
        revision: None,
        cache_dir: None,
        quiet: true,
    })
}

#[test]
fn proxy_variables_route_downloads_and_no_proxy_bypasses_them() {
    let hub = FakeHub::sd1_tiny(Behaviour {
        redirect_lfs: true,
        ..Behaviour::default()
    });
    let data = tempfile::tempdir().unwrap();
    set(&[
        ("LANTERN_DATA_DIR", Some(data.path().to_str().unwrap())),
        ("HF_TOKEN", None),
        ("ALL_PROXY", None),
        ("all_proxy", None),
        ("https_proxy", None),
        ("HTTPS_PROXY", None),
        ("http_proxy", None),
        ("no_proxy", None),
        ("NO_PROXY", None),
    ]);

    // A host that does not resolve, reachable only through the proxy.
    set(&[
        ("HF_ENDPOINT", Some(&format!("http://{HOST}"))),
        ("HTTP_PROXY", Some(&hub.url())),
    ]);
    let cache = tempfile::tempdir().unwrap();
    download(cache.path()).expect("download through HTTP_PROXY");
    let seen = hub.seen();
    assert!(seen.len() > 5, "{seen:?}");
    assert!(
        seen.iter().all(|s| s.proxied_for.as_deref() == Some(HOST)),
        "every request (the API, the files, the CDN redirects) went through the proxy: {seen:?}"
    );

    // Lower case, with the Hub's own address named in no_proxy: straight to it, the dead proxy
    // never asked.
    set(&[
        ("HTTP_PROXY", None),
        ("http_proxy", Some("http://127.0.0.1:1")),
        ("no_proxy", Some("localhost,127.0.0.1")),
        ("HF_ENDPOINT", Some(&hub.url())),
    ]);
    let before = hub.seen().len();
    let cache = tempfile::tempdir().unwrap();
    download(cache.path()).expect("download bypassing the proxy");
    let seen = hub.seen();
    assert!(seen.len() > before);
    assert!(seen[before..].iter().all(|s| s.proxied_for.is_none()), "{seen:?}");

    // The same without no_proxy: the lower-case proxy is used, and its failure says so.
    set(&[("no_proxy", None)]);
    let cache = tempfile::tempdir().unwrap();
    let e = download(cache.path()).expect_err("the proxy is dead");
    let text = format!("{e:#}");
    assert!(text.contains("through the proxy http://127.0.0.1:1"), "{text}");
    let kind = e.downcast_ref::<lantern::Error>().map(lantern::Error::kind);
    assert_eq!(kind, Some(lantern::error::Kind::Offline), "{text}");
}
