//! The blocking HTTP client behind downloads: one `ureq` agent with connect and read timeouts
//! (so an unreachable or stalled server gives an error in seconds, never a hang), redirects
//! followed by hand so the Hub's own headers on the first response (`X-Repo-Commit`,
//! `X-Linked-Etag`) are kept, and every failure turned into one plain line with its kind
//! (offline, unauthorized, not found, other network trouble).

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use url::Url;

use super::proxy::ProxyEnv;
use crate::error::{Error, Failure, Kind, Result};

const MAX_REDIRECTS: usize = 10;

pub(crate) struct Http {
    /// Requests that go straight to the server.
    direct: ureq::Agent,
    /// The proxy variables (`HTTPS_PROXY`, `NO_PROXY`, …) read when this client was made.
    proxies: ProxyEnv,
    /// One agent per proxy URL in use (ureq sets the proxy per agent), made when first needed.
    proxied: Mutex<HashMap<String, ureq::Agent>>,
    token: Option<String>,
    connect_timeout: Duration,
    read_timeout: Duration,
}

/// A response with the Hub metadata gathered along the redirect chain.
pub(crate) struct HubResponse {
    pub status: u16,
    /// The URL first asked for (what the user should see in messages).
    pub url: String,
    pub repo_commit: Option<String>,
    /// `X-Linked-Etag` (LFS files, on the redirect) or `ETag`, quotes and `W/` removed.
    pub etag: Option<String>,
    pub content_range: Option<String>,
    response: ureq::Response,
}

impl HubResponse {
    pub fn into_reader(self) -> Box<dyn Read + Send + Sync + 'static> {
        self.response.into_reader()
    }

    pub fn into_json<T: serde::de::DeserializeOwned>(self) -> Result<T> {
        let url = self.url.clone();
        self.response
            .into_json()
            .map_err(|e| Error::network(format!("{url}: unreadable answer from the server: {e}")))
    }

    /// The error for a non-success status, worded for people, of the kind the status says.
    pub fn status_error(&self, what: &str) -> Error {
        let status = self.status;
        let kind = match status {
            401 | 403 => Kind::Unauthorized,
            404 => Kind::NotFound,
            _ => Kind::Network,
        };
        let message = match status {
            401 | 403 => format!(
                "{what}: access denied (HTTP {status}). The repo may be gated or private: accept its license on the Hub and set HF_TOKEN"
            ),
            404 => format!("{what}: not found (HTTP 404) at {}", self.url),
            429 => format!("{what}: the server is rate-limiting us (HTTP 429); try again in a few minutes"),
            500..=599 => format!("{what}: the server failed (HTTP {status}); try again later"),
            _ => format!("{what}: unexpected answer HTTP {status} from {}", self.url),
        };
        Error::Network(Failure::new(kind, message))
    }
}

impl Http {
    /// A client using the proxy variables of the process environment.
    pub fn new(connect_timeout: Duration, read_timeout: Duration, token: Option<String>) -> Self {
        Self::with_proxies(connect_timeout, read_timeout, token, ProxyEnv::from_env())
    }

    pub fn with_proxies(
        connect_timeout: Duration,
        read_timeout: Duration,
        token: Option<String>,
        proxies: ProxyEnv,
    ) -> Self {
        Http {
            direct: Self::builder(connect_timeout, read_timeout).build(),
            proxies,
            proxied: Mutex::new(HashMap::new()),
            token,
            connect_timeout,
            read_timeout,
        }
    }

    fn builder(connect_timeout: Duration, read_timeout: Duration) -> ureq::AgentBuilder {
        let builder = ureq::AgentBuilder::new()
            .timeout_connect(connect_timeout)
            .timeout_read(read_timeout)
            .timeout_write(read_timeout)
            .redirects(0)
            // The proxy is chosen per URL here (ureq's own reading ignores NO_PROXY and the scheme).
            .try_proxy_from_env(false)
            .user_agent(concat!("lantern/", env!("CARGO_PKG_VERSION")));
        match tls_config() {
            Some(config) => builder.tls_config(config),
            None => builder,
        }
    }

    /// The agent for `url`: through the proxy the environment names for it, else direct.
    fn agent_for(&self, url: &Url) -> Result<(ureq::Agent, Option<String>)> {
        let Some(proxy) = self.proxies.proxy_for(url) else {
            return Ok((self.direct.clone(), None));
        };
        let shown = proxy_display(proxy);
        let mut agents = self.proxied.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(agent) = agents.get(proxy) {
            return Ok((agent.clone(), Some(shown)));
        }
        let parsed = ureq::Proxy::new(proxy).map_err(|e| {
            Error::invalid(format!(
                "the {} proxy {shown} set in the environment is not usable ({e}); use http://host:port",
                url.scheme()
            ))
        })?;
        let agent = Self::builder(self.connect_timeout, self.read_timeout)
            .proxy(parsed)
            .build();
        agents.insert(proxy.to_owned(), agent.clone());
        Ok((agent, Some(shown)))
    }

    /// GET `url`, optionally from byte `range_from`, following redirects. Returns any status;
    /// the caller decides which ones it accepts. Transport failures become [`Error::Network`]
    /// of kind [`Kind::Offline`].
    pub fn get(&self, url: &str, range_from: Option<u64>) -> Result<HubResponse> {
        let first = Url::parse(url).map_err(|e| Error::network(format!("bad URL {url}: {e}")))?;
        let mut current = first.clone();
        let mut repo_commit = None;
        let mut etag = None;
        for _ in 0..MAX_REDIRECTS {
            let (agent, proxy) = self.agent_for(&current)?;
            let mut request = agent.request_url("GET", &current);
            if let Some(from) = range_from {
                request = request.set("Range", &format!("bytes={from}-"));
            }
            // The token goes to the endpoint's origin only, never to a CDN we are sent on to,
            // nor over plain HTTP after a redirect from HTTPS on the same host and port.
            if let Some(token) = &self.token
                && same_origin(&current, &first)
            {
                request = request.set("Authorization", &format!("Bearer {token}"));
            }
            let response = match request.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(_, r)) => r,
                Err(ureq::Error::Transport(t)) => {
                    return Err(self.transport_error(&current, proxy.as_deref(), &t));
                }
            };
            if repo_commit.is_none() {
                repo_commit = response.header("X-Repo-Commit").map(str::to_owned);
            }
            if etag.is_none() {
                etag = response
                    .header("X-Linked-Etag")
                    .or_else(|| response.header("ETag"))
                    .map(normalize_etag);
            }
            let status = response.status();
            if (300..400).contains(&status)
                && let Some(location) = response.header("Location")
            {
                current = current
                    .join(location)
                    .map_err(|e| Error::network(format!("{url}: bad redirect to `{location}`: {e}")))?;
                continue;
            }
            let content_range = response.header("Content-Range").map(str::to_owned);
            return Ok(HubResponse {
                status,
                url: url.to_owned(),
                repo_commit,
                etag,
                content_range,
                response,
            });
        }
        Err(Error::network(format!("{url}: too many redirects")))
    }

    /// The server was not reached (no answer, refused, unresolvable, TLS or proxy failure):
    /// always [`Kind::Offline`], whatever the reason says.
    fn transport_error(&self, url: &Url, proxy: Option<&str>, t: &ureq::Transport) -> Error {
        let mut host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => url.to_string(),
        };
        if let Some(proxy) = proxy {
            host = format!("{host} through the proxy {proxy}");
        }
        let io = std::error::Error::source(t)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(|e| e.kind());
        let detail = t.message().unwrap_or("").replace('\n', " ");
        let reason = match (t.kind(), io) {
            (ureq::ErrorKind::Dns, _) => "the host name could not be resolved (offline?)".to_owned(),
            (_, Some(std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)) => {
                format!("no answer within {} s", self.read_timeout.as_secs().max(1))
            }
            (_, Some(std::io::ErrorKind::ConnectionRefused)) => "connection refused".to_owned(),
            (ureq::ErrorKind::ConnectionFailed, _) => format!("cannot connect ({detail})"),
            (kind, _) if detail.is_empty() => kind.to_string(),
            (kind, _) => format!("{kind}: {detail}"),
        };
        Error::offline(format!(
            "cannot reach {host}: {reason}. Check the network connection, or set HF_ENDPOINT to a reachable mirror"
        ))
    }
}

/// A proxy URL as messages show it: scheme, host and port, never its user name or password.
fn proxy_display(proxy: &str) -> String {
    let with_scheme = if proxy.contains("://") {
        proxy.to_owned()
    } else {
        format!("http://{proxy}")
    };
    match Url::parse(&with_scheme) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => "(unparsable)".into(),
        },
        Err(_) => "(unparsable)".into(),
    }
}

/// The TLS settings of every download: the bundled Mozilla roots plus the system's
/// certificate store, so a company proxy that inspects TLS with its own root (installed in the
/// system store, as `git` and `pip` expect) is trusted. `None` keeps ureq's defaults (bundled
/// roots only) should rustls refuse the settings.
fn tls_config() -> Option<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::debug!("system certificate store: {e}");
            }
            let roots = root_store(native.certs);
            rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
                .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .inspect_err(|e| tracing::warn!("TLS settings refused, using the bundled roots only: {e}"))
                .ok()
        })
        .clone()
}

/// The bundled roots plus `system` (certificates the system trusts; unparsable ones skipped).
fn root_store(system: Vec<rustls::pki_types::CertificateDer<'static>>) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let (added, skipped) = roots.add_parsable_certificates(system);
    tracing::debug!("trusting {added} certificates from the system store ({skipped} unparsable)");
    roots
}

/// `W/"abc"` → `abc`.
pub(crate) fn normalize_etag(raw: &str) -> String {
    raw.trim().trim_start_matches("W/").trim_matches('"').to_owned()
}

/// Joins path segments onto the endpoint, percent-encoding each one, `/` included (so a
/// revision like `refs/pr/1` stays one segment). The endpoint may carry a path prefix, as some
/// mirrors do.
pub(crate) fn endpoint_url(endpoint: &str, segments: &[&str], query: Option<&str>) -> Result<String> {
    let mut url =
        Url::parse(endpoint).map_err(|e| Error::invalid(format!("HF_ENDPOINT `{endpoint}` is not a URL: {e}")))?;
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|_| Error::invalid(format!("HF_ENDPOINT `{endpoint}` cannot be a base URL")))?;
        path.pop_if_empty();
        path.extend(segments);
    }
    url.set_query(query);
    Ok(url.to_string())
}

/// Scheme, host and port all equal (the web's notion of one origin).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn the_token_origin_includes_the_scheme() {
        let url = |s: &str| url::Url::parse(s).unwrap();
        let hub = url("https://huggingface.co/api/models/x");
        assert!(same_origin(&hub, &url("https://huggingface.co/x/resolve/main/a")));
        assert!(same_origin(&hub, &url("https://huggingface.co:443/b")));
        // A downgrade to plain HTTP on the same host and port would send the token in clear.
        assert!(!same_origin(
            &url("https://hub.local:8080/a"),
            &url("http://hub.local:8080/a")
        ));
        assert!(!same_origin(&hub, &url("https://cdn-lfs.huggingface.co/a")));
        assert!(!same_origin(&hub, &url("https://huggingface.co:8443/a")));
    }

    #[test]
    fn urls_keep_mirror_prefixes_and_encode_segments() {
        assert_eq!(
            endpoint_url(
                "https://huggingface.co",
                &["api", "models", "a", "b", "revision", "refs/pr/1"],
                Some("blobs=true")
            )
            .unwrap(),
            "https://huggingface.co/api/models/a/b/revision/refs%2Fpr%2F1?blobs=true"
        );
        assert_eq!(
            endpoint_url(
                "https://mirror.example/hf/",
                &["a", "b", "resolve", "c0ffee", "unet", "config.json"],
                None
            )
            .unwrap(),
            "https://mirror.example/hf/a/b/resolve/c0ffee/unet/config.json"
        );
        assert!(endpoint_url("https://x", &["a b"], None).unwrap().ends_with("/a%20b"));
        assert!(endpoint_url("not a url", &[], None).is_err());
    }

    #[test]
    fn the_system_store_adds_to_the_bundled_roots() {
        let bundled = webpki_roots::TLS_SERVER_ROOTS.len();
        let corp = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/corp-root.der")).unwrap();
        let roots = root_store(vec![corp.into(), vec![1, 2, 3].into()]);
        assert_eq!(
            roots.len(),
            bundled + 1,
            "the corporate root added, the garbage skipped"
        );
        // The corporate root is there by its subject (DER of CN=Lantern Test Corporate Root).
        let cn = b"Lantern Test Corporate Root";
        assert!(
            roots
                .roots
                .iter()
                .any(|a| a.subject.as_ref().windows(cn.len()).any(|w| w == cn))
        );
        assert!(tls_config().is_some(), "rustls accepts the settings");
    }

    #[test]
    fn proxies_are_shown_without_credentials() {
        assert_eq!(proxy_display("http://user:secret@corp:3128"), "http://corp:3128");
        assert_eq!(proxy_display("corp:3128"), "http://corp:3128");
        assert_eq!(proxy_display("http://u:hunter2@[::1]:8080"), "http://[::1]:8080");
    }

    #[test]
    fn etags_lose_quotes_and_weak_marker() {
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
    }
}
