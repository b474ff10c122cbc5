//! The HTTP proxy an OTLP/HTTP exporter goes through, named by the process
//! environment as the official exporter's HTTP client (reqwest, through
//! hyper-util's proxy matcher, which this module uses too) reads it:
//! `HTTPS_PROXY` for `https://` collectors, `HTTP_PROXY` for `http://` ones,
//! `ALL_PROXY` for either when the other is unset (each also in lower case,
//! the upper-case name first), and `NO_PROXY`, a comma-separated list of
//! hosts, domains (with their subdomains), IP addresses or networks
//! (`10.0.0.0/8`), or `*`, that go direct. Nothing is read when
//! `REQUEST_METHOD` is set: in a CGI program `HTTP_PROXY` may come from a
//! request's `Proxy` header.
//!
//! Only OTLP/HTTP uses them, as the official exporters do: its gRPC
//! exporter (tonic) reads no proxy variable, and neither does this crate's.
//! An `https://` collector is reached through a `CONNECT` tunnel, an
//! `http://` one by sending the proxy each request in absolute form. The
//! proxy itself is spoken to in plain HTTP (`http://` proxy URLs, or no
//! scheme); credentials in its URL (`http://user:pass@proxy:3128`) are sent
//! as `Proxy-Authorization: Basic` and never shown.

use std::fmt;

use http::{HeaderValue, Uri};
use hyper_util::client::proxy::matcher::Matcher;

use super::error::{ExporterConfigError, ExporterConfigErrorKind, ValueOrigin};

/// What a proxy's 407 means to the user, whether it answered a tunnel's
/// `CONNECT` or a forwarded request.
const PROXY_WANTS_CREDENTIALS: &str = "it asks for credentials (407 Proxy Authentication Required); \
                                                  give them in the proxy's URL, http://user:password@host:port";

/// A proxy's 407: it wants credentials the exporter did not give, whether
/// it answered a tunnel's `CONNECT` or a forwarded request. Retrying cannot
/// fix it, so it is permanent (`http/classify.rs`), and it names the proxy
/// as [`Proxy`]'s `Display` does (its URL without credentials, and its
/// variable).
#[derive(Debug)]
pub(crate) struct ProxyWantsCredentials {
    proxy: String,
}

impl ProxyWantsCredentials {
    pub(crate) fn new(proxy: impl fmt::Display) -> Self {
        Self { proxy: proxy.to_string() }
    }
}

impl fmt::Display for ProxyWantsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "through the proxy {}: {PROXY_WANTS_CREDENTIALS}", self.proxy)
    }
}

impl std::error::Error for ProxyWantsCredentials {}

/// One proxy variable, as read: its name and value (not empty).
#[derive(Clone, PartialEq, Eq)]
struct ProxyVar {
    variable: &'static str,
    value: String,
}

impl ProxyVar {
    /// The value with any user information replaced by `***`: what errors
    /// and `Debug` show.
    fn shown(&self) -> String {
        without_credentials(&self.value)
    }
}

/// `value` with the user information of its authority (`user:pass@`), if
/// it has any, replaced by `***@`.
fn without_credentials(value: &str) -> String {
    let (scheme, rest) = value.split_once("://").map_or(("", value), |(s, r)| (s, r));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let prefix = if scheme.is_empty() { String::new() } else { format!("{scheme}://") };
            format!("{prefix}***{}", &rest[at..])
        }
        None => value.to_owned(),
    }
}

/// The proxy variables of an environment: which of `HTTPS_PROXY`,
/// `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` are set, and to what. See the
/// [module documentation](self) for how they are read and used. `Default`
/// is an environment with none of them.
///
/// Proxy credentials are not shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct ProxyEnv {
    https: Option<ProxyVar>,
    http: Option<ProxyVar>,
    all: Option<ProxyVar>,
    no: Option<ProxyVar>,
}

impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |var: &Option<ProxyVar>| var.as_ref().map(|v| format!("{}={}", v.variable, v.shown()));
        f.debug_struct("ProxyEnv")
            .field("https", &shown(&self.https))
            .field("http", &shown(&self.http))
            .field("all", &shown(&self.all))
            .field("no", &self.no.as_ref().map(|v| format!("{}={}", v.variable, v.value)))
            .finish()
    }
}

/// The proxy one collector URL goes through.
#[derive(Clone)]
pub(crate) struct Proxy {
    /// The proxy's URL, without credentials.
    uri: Uri,
    /// `Proxy-Authorization`, from the credentials in the proxy's URL.
    authorization: Option<HeaderValue>,
    /// The variable that named it.
    variable: &'static str,
}

impl Proxy {
    /// The proxy's URL, without credentials: where to connect.
    pub(crate) fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The `Proxy-Authorization` value to send, when the proxy's URL has credentials.
    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }
}

/// How errors name the proxy: its URL without credentials, and the
/// variable it came from (`http://proxy:3128 (HTTPS_PROXY)`).
impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.uri, self.variable)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("uri", &self.uri)
            .field("variable", &self.variable)
            .field("authorization", &self.authorization.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ProxyEnv {
    /// Reads the proxy variables through `lookup` (variable name to value):
    /// for each, the upper-case name first, then the lower-case one; an
    /// empty value counts as unset. With `REQUEST_METHOD` set, none.
    pub(crate) fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Self {
        if lookup("REQUEST_METHOD").is_some() {
            return Self::default();
        }
        let read = |names: [&'static str; 2]| {
            names.into_iter().find_map(|variable| {
                lookup(variable).filter(|v| !v.trim().is_empty()).map(|value| ProxyVar { variable, value })
            })
        };
        Self {
            https: read(["HTTPS_PROXY", "https_proxy"]),
            http: read(["HTTP_PROXY", "http_proxy"]),
            all: read(["ALL_PROXY", "all_proxy"]),
            no: read(["NO_PROXY", "no_proxy"]),
        }
    }

    /// Checks each proxy URL: an `http://` URL (or one without a scheme,
    /// taken as `http://`) with a host, and nothing after the port.
    ///
    /// # Errors
    ///
    /// An [`ExporterConfigError`] naming the variable and its value (without
    /// credentials): [`ExporterConfigErrorKind::InvalidUrl`] for a value that
    /// is not a URL with a host, [`ExporterConfigErrorKind::UnsupportedProxy`]
    /// for an `https://` or SOCKS proxy.
    pub(crate) fn check(&self) -> Result<(), ExporterConfigError> {
        for var in [&self.https, &self.http, &self.all].into_iter().flatten() {
            let error = |kind| ExporterConfigError::new(ValueOrigin::Env(var.variable), var.shown(), kind);
            let uri: Uri = var.value.trim().parse().map_err(|_| error(ExporterConfigErrorKind::InvalidUrl))?;
            match uri.scheme_str() {
                None | Some("http") => {}
                Some(_) => return Err(error(ExporterConfigErrorKind::UnsupportedProxy)),
            }
            if uri.host().is_none_or(str::is_empty) {
                return Err(error(ExporterConfigErrorKind::MissingHost));
            }
        }
        Ok(())
    }

    /// The proxy `url` goes through: `None` when no variable names one for
    /// its scheme, or `NO_PROXY` lists its host. The variables must have
    /// passed [`check`](Self::check).
    pub(crate) fn proxy_for(&self, url: &Uri) -> Option<Proxy> {
        let named = match url.scheme_str() {
            Some("https") => self.https.as_ref().or(self.all.as_ref()),
            Some("http") => self.http.as_ref().or(self.all.as_ref()),
            _ => None,
        }?;
        let mut matcher = Matcher::builder();
        matcher = match url.scheme_str() {
            Some("https") => matcher.https(named.value.trim()),
            _ => matcher.http(named.value.trim()),
        };
        if let Some(no) = &self.no {
            matcher = matcher.no(no.value.as_str());
        }
        let intercept = matcher.build().intercept(url)?;
        Some(Proxy {
            uri: intercept.uri().clone(),
            authorization: intercept.basic_auth().cloned(),
            variable: named.variable,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ProxyEnv::from_lookup(&|name: &str| vars.get(name).cloned())
    }

    fn via(env: &ProxyEnv, url: &'static str) -> Option<String> {
        env.proxy_for(&Uri::from_static(url)).map(|p| p.to_string())
    }

    #[test]
    fn each_scheme_takes_its_variable_then_all_proxy() {
        let both = env(&[("HTTPS_PROXY", "http://secure:3128"), ("HTTP_PROXY", "plain:8080")]);
        assert_eq!(
            via(&both, "https://collector:4318/v1/metrics").as_deref(),
            Some("http://secure:3128/ (HTTPS_PROXY)")
        );
        assert_eq!(via(&both, "http://collector:4318/v1/metrics").as_deref(), Some("http://plain:8080/ (HTTP_PROXY)"));
        let all = env(&[("all_proxy", "http://everything:1")]);
        assert_eq!(via(&all, "https://c/").as_deref(), Some("http://everything:1/ (all_proxy)"));
        assert_eq!(via(&all, "http://c/").as_deref(), Some("http://everything:1/ (all_proxy)"));
        assert_eq!(via(&env(&[("HTTPS_PROXY", "http://p:1")]), "http://c/"), None, "HTTPS_PROXY is for https only");
        assert_eq!(via(&ProxyEnv::default(), "https://c/"), None);
    }

    #[test]
    fn upper_case_wins_empty_is_unset_and_cgi_reads_nothing() {
        let both = env(&[("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "http://lower:2")]);
        assert_eq!(via(&both, "https://c/").as_deref(), Some("http://upper:1/ (HTTPS_PROXY)"));
        let empty = env(&[("HTTPS_PROXY", " "), ("https_proxy", "http://lower:2")]);
        assert_eq!(via(&empty, "https://c/").as_deref(), Some("http://lower:2/ (https_proxy)"));
        let cgi = env(&[("HTTP_PROXY", "http://from-a-header:1"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(via(&cgi, "http://c/"), None);
    }

    #[test]
    fn no_proxy_sends_hosts_domains_and_networks_direct() {
        let e = env(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "localhost, .internal.example,10.0.0.0/8")]);
        assert_eq!(via(&e, "https://localhost:4318/"), None);
        assert_eq!(via(&e, "https://otel.internal.example/"), None);
        assert_eq!(via(&e, "https://10.1.2.3:4318/"), None);
        assert!(via(&e, "https://collector.example.com/").is_some());
        assert!(via(&e, "https://127.0.0.1:4318/").is_some(), "loopback is not exempt unless listed");
        assert_eq!(via(&env(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")]), "https://anything/"), None);
    }

    #[test]
    fn credentials_become_proxy_authorization_and_are_never_shown() {
        let e = env(&[("HTTPS_PROXY", "http://Aladdin:open%20sesame@p:3128")]);
        let proxy = e.proxy_for(&Uri::from_static("https://c/")).unwrap();
        assert_eq!(proxy.uri(), &Uri::from_static("http://p:3128/"));
        // base64("Aladdin:open sesame")
        assert_eq!(proxy.authorization().unwrap(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        for shown in [proxy.to_string(), format!("{proxy:?}"), format!("{e:?}")] {
            assert!(!shown.contains("Aladdin") && !shown.contains("sesame"), "{shown}");
        }
        assert!(format!("{e:?}").contains("http://***@p:3128"), "{e:?}");
    }

    #[test]
    fn check_names_the_variable_and_hides_credentials() {
        assert!(env(&[("HTTPS_PROXY", "http://p:3128"), ("HTTP_PROXY", "p:8080")]).check().is_ok());
        let err = env(&[("HTTPS_PROXY", "https://user:secret@p:443")]).check().unwrap_err();
        assert_eq!(err.origin(), ValueOrigin::Env("HTTPS_PROXY"));
        assert_eq!(err.kind(), ExporterConfigErrorKind::UnsupportedProxy);
        assert_eq!(err.value(), Some("https://***@p:443"));
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = env(&[("ALL_PROXY", "socks5://p:1080")]).check().unwrap_err();
        assert_eq!(
            (err.origin(), err.kind()),
            (ValueOrigin::Env("ALL_PROXY"), ExporterConfigErrorKind::UnsupportedProxy)
        );
        let err = env(&[("http_proxy", "not a url")]).check().unwrap_err();
        assert_eq!((err.origin(), err.kind()), (ValueOrigin::Env("http_proxy"), ExporterConfigErrorKind::InvalidUrl));
        assert_eq!(err.value(), Some("not a url"));
    }

    #[test]
    fn credentials_are_cut_from_shown_values_only_in_the_authority() {
        assert_eq!(without_credentials("http://u:p@host:1/path@x"), "http://***@host:1/path@x");
        assert_eq!(without_credentials("u@host:1"), "***@host:1");
        assert_eq!(without_credentials("http://host:1/a@b"), "http://host:1/a@b");
    }
}
