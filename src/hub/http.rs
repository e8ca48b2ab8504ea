//! The blocking HTTP client behind downloads: one `ureq` agent with connect and read timeouts
//! (so an unreachable or stalled server gives an error in seconds, never a hang), redirects
//! followed by hand so the Hub's own headers on the first response (`X-Repo-Commit`,
//! `X-Linked-Etag`) are kept, and every failure turned into one plain line with its kind
//! (offline, unauthorized, not found, other network trouble).

use std::io::Read;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Failure, Kind, Result};

const MAX_REDIRECTS: usize = 10;

pub(crate) struct Http {
    agent: ureq::Agent,
    token: Option<String>,
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
    pub fn new(connect_timeout: Duration, read_timeout: Duration, token: Option<String>) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(connect_timeout)
            .timeout_read(read_timeout)
            .timeout_write(read_timeout)
            .redirects(0)
            .user_agent(concat!("lantern/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent,
            token,
            read_timeout,
        }
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
            let mut request = self.agent.request_url("GET", &current);
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
                    return Err(self.transport_error(&current, &t));
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
    fn transport_error(&self, url: &Url, t: &ureq::Transport) -> Error {
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => url.to_string(),
        };
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
    fn etags_lose_quotes_and_weak_marker() {
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
    }
}
