//! Which proxy a download goes through, from the environment variables `git`, `curl` and
//! `pip` read: `https_proxy` for HTTPS URLs, `http_proxy` for plain HTTP, `all_proxy` for
//! either when the specific one is unset, and `no_proxy` naming hosts reached directly. Each is
//! read in lower case first, then upper case (`HTTPS_PROXY`, …). Read once per download, so
//! each hop of a redirect chain (the Hub, then its CDN) is routed by its own URL.

use url::Url;

/// The proxy variables as read from the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    https: Option<String>,
    http: Option<String>,
    all: Option<String>,
    /// `no_proxy` entries, lower case, without leading `*.` / `.`.
    no_proxy: Vec<String>,
}

impl ProxyEnv {
    /// From the process environment.
    pub fn from_env() -> ProxyEnv {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup (tests pass a map, leaving the process environment alone).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let var = |lower: &str| {
            get(lower)
                .or_else(|| get(&lower.to_ascii_uppercase()))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let no_proxy = var("no_proxy")
            .map(|list| {
                list.split(',')
                    .map(|e| {
                        e.trim()
                            .trim_start_matches("*.")
                            .trim_start_matches('.')
                            .to_ascii_lowercase()
                    })
                    .filter(|e| !e.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        ProxyEnv {
            https: var("https_proxy"),
            http: var("http_proxy"),
            all: var("all_proxy"),
            no_proxy,
        }
    }

    /// The proxy URL to use for `url`, or `None` to connect directly.
    pub fn proxy_for(&self, url: &Url) -> Option<&str> {
        if self.bypasses(url) {
            return None;
        }
        let specific = match url.scheme() {
            "https" => self.https.as_deref(),
            "http" => self.http.as_deref(),
            _ => None,
        };
        specific.or(self.all.as_deref())
    }

    /// Whether `no_proxy` names the URL's host: `*` for every host, a domain for itself and
    /// its subdomains (`example.com` and `.example.com` both cover `cdn.example.com`), an IP
    /// address or `localhost` exactly; an entry with `:port` only for that port.
    fn bypasses(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = url.port_or_known_default();
        self.no_proxy.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            let (name, entry_port) = split_port(entry);
            if entry_port.is_some() && entry_port != port {
                return false;
            }
            host == name || host.ends_with(&format!(".{name}"))
        })
    }
}

/// `host:port` → (`host`, port); a bare host, or an IPv6 address without brackets, has none.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        // [::1]:8080
        if let Some((addr, tail)) = rest.split_once(']') {
            return (addr, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(p) => (name, Some(p)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ProxyEnv::from_lookup(|k| map.get(k).cloned())
    }

    fn proxy<'a>(e: &'a ProxyEnv, url: &str) -> Option<&'a str> {
        e.proxy_for(&Url::parse(url).unwrap())
    }

    #[test]
    fn the_variable_follows_the_scheme_in_either_case() {
        let e = env(&[("HTTPS_PROXY", "http://corp:3128"), ("http_proxy", "http://plain:80")]);
        assert_eq!(proxy(&e, "https://huggingface.co/a"), Some("http://corp:3128"));
        assert_eq!(proxy(&e, "http://mirror.local/a"), Some("http://plain:80"));
        // Lower case wins over upper case, as in curl.
        let e = env(&[("https_proxy", "http://lower:1"), ("HTTPS_PROXY", "http://upper:2")]);
        assert_eq!(proxy(&e, "https://h/a"), Some("http://lower:1"));
        // all_proxy when the scheme's own is unset; nothing at all means direct.
        let e = env(&[("ALL_PROXY", "http://all:9"), ("http_proxy", "http://plain:80")]);
        assert_eq!(proxy(&e, "https://h/a"), Some("http://all:9"));
        assert_eq!(proxy(&e, "http://h/a"), Some("http://plain:80"));
        assert_eq!(proxy(&env(&[]), "https://h/a"), None);
        assert_eq!(
            proxy(&env(&[("HTTPS_PROXY", "  ")]), "https://h/a"),
            None,
            "blank is unset"
        );
    }

    #[test]
    fn no_proxy_names_hosts_domains_ports_and_everything() {
        let e = env(&[
            ("HTTPS_PROXY", "http://corp:3128"),
            (
                "NO_PROXY",
                "localhost, .internal.example ,mirror.local:8443,10.0.0.7,[::1]",
            ),
        ]);
        assert_eq!(proxy(&e, "https://localhost/a"), None);
        assert_eq!(proxy(&e, "https://hub.internal.example/a"), None, "subdomain");
        assert_eq!(proxy(&e, "https://internal.example/a"), None, "the domain itself");
        assert_eq!(proxy(&e, "https://notinternal.example/a"), Some("http://corp:3128"));
        assert_eq!(proxy(&e, "https://mirror.local:8443/a"), None, "its port");
        assert_eq!(
            proxy(&e, "https://mirror.local/a"),
            Some("http://corp:3128"),
            "another port"
        );
        assert_eq!(proxy(&e, "https://10.0.0.7/a"), None);
        assert_eq!(proxy(&e, "https://10.0.0.70/a"), Some("http://corp:3128"));
        assert_eq!(proxy(&e, "https://[::1]:9/a"), None);
        assert_eq!(proxy(&e, "https://huggingface.co/a"), Some("http://corp:3128"));
        let e = env(&[("https_proxy", "http://corp:3128"), ("no_proxy", "*")]);
        assert_eq!(proxy(&e, "https://huggingface.co/a"), None);
        let e = env(&[("https_proxy", "http://corp:3128"), ("no_proxy", "*.example.com")]);
        assert_eq!(proxy(&e, "https://cdn.example.com/a"), None);
    }
}
