//! Who may open a session: a token and an Origin check, both decided before the websocket
//! upgrade, so a refused client never reaches QEMU.
//!
//! - Token: random per start unless given; sent as `?token=` (the page copies it from its
//!   own URL) or `Authorization: Bearer`; compared in constant time; never logged.
//! - Origin: a browser's upgrade must come from the bridge's own origin or one listed with
//!   `--allow-origin` (cross-site websocket hijacking). Clients that send no Origin are
//!   not browsers and are held to the token alone.
//! - Host: on a loopback listener, the `Host` must name loopback too, so a DNS-rebinding
//!   page cannot pass itself off as the bridge's own origin.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use axum::extract::Query;
use axum::http::{header, HeaderMap, Uri};

/// How websocket clients authenticate.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Token(String),
    /// `--no-auth`: anyone who reaches the port.
    Disabled,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Auth::Token(<redacted>)"),
            Auth::Disabled => f.write_str("Auth::Disabled"),
        }
    }
}

/// Why a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("--token-file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("cannot read random bytes for the token: {0}")]
    Random(std::io::Error),
    #[error("{0}: a token must be 8 to 256 printable ASCII characters without spaces")]
    Shape(&'static str),
}

/// 32 random bytes from the kernel, hex-encoded.
pub fn random_token() -> Result<String, TokenError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(TokenError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks a token given by the user.
pub fn validate_token(token: &str, source: &'static str) -> Result<String, TokenError> {
    let ok = (8..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(token.to_owned())
    } else {
        Err(TokenError::Shape(source))
    }
}

/// Reads a token from the first line of a file.
pub fn read_token_file(path: &Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|e| TokenError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    validate_token(text.lines().next().unwrap_or("").trim(), "--token-file")
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request carries: `?token=` or `Authorization: Bearer`.
fn presented_token(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let from_query = Query::<HashMap<String, String>>::try_from_uri(uri)
        .ok()
        .and_then(|Query(mut q)| q.remove("token"));
    from_query.or_else(|| {
        headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(|t| t.trim().to_owned())
    })
}

/// Where a refusal came from: the HTTP status and a sentence for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

/// The admission rules for `/ws`.
#[derive(Debug, Clone)]
pub struct Gate {
    pub auth: Auth,
    /// Origins allowed besides the bridge's own (`scheme://host[:port]`, lower case).
    pub allowed_origins: Vec<String>,
    /// `https` with TLS, else `http`.
    pub scheme: &'static str,
    /// The listener is on a loopback address.
    pub loopback: bool,
}

/// `URL` as an origin: lower case, no path, no trailing slash.
pub fn normalize_origin(url: &str) -> Option<String> {
    let url = url.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
        return None;
    }
    Some(url)
}

fn host_is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Gate {
    /// Admits or refuses a websocket upgrade request.
    pub fn admit(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase());
        if let Some(origin) = &origin {
            let own = format!("{}://{}", self.scheme, host.to_ascii_lowercase());
            let listed = self.allowed_origins.iter().any(|o| o == origin);
            if !listed && (origin != &own || (self.loopback && !host_is_loopback(host))) {
                return Err(Refusal {
                    status: 403,
                    reason: format!(
                        "qmp-bridge: websocket from origin {origin} refused: not this bridge's own origin; allow it with --allow-origin {origin}\n"
                    ),
                });
            }
        }
        if let Auth::Token(expected) = &self.auth {
            let ok = presented_token(uri, headers)
                .is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()));
            if !ok {
                return Err(Refusal {
                    status: 401,
                    reason: "qmp-bridge: missing or wrong token: open the URL qmp-bridge printed (it carries ?token=...), or send Authorization: Bearer TOKEN\n".into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn gate() -> Gate {
        Gate {
            auth: Auth::Token("s3cret-token".into()),
            allowed_origins: vec!["https://console.example".into()],
            scheme: "http",
            loopback: true,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn token_by_query_or_bearer() {
        let g = gate();
        let h = headers(&[("host", "127.0.0.1:8780")]);
        assert!(g
            .admit(&"/ws?token=s3cret-token".parse().unwrap(), &h)
            .is_ok());
        assert!(g
            .admit(&"/ws?token=s3cret%2Dtoken".parse().unwrap(), &h)
            .is_ok());
        assert_eq!(
            g.admit(&"/ws".parse().unwrap(), &h).unwrap_err().status,
            401
        );
        assert_eq!(
            g.admit(&"/ws?token=s3cret-tokeX".parse().unwrap(), &h)
                .unwrap_err()
                .status,
            401
        );
        let h = headers(&[
            ("host", "127.0.0.1:8780"),
            ("authorization", "Bearer s3cret-token"),
        ]);
        assert!(g.admit(&"/ws".parse().unwrap(), &h).is_ok());
    }

    #[test]
    fn origin_rules() {
        let g = gate();
        let uri: Uri = "/ws?token=s3cret-token".parse().unwrap();
        let own = headers(&[
            ("host", "127.0.0.1:8780"),
            ("origin", "http://127.0.0.1:8780"),
        ]);
        assert!(g.admit(&uri, &own).is_ok());
        let foreign = headers(&[
            ("host", "127.0.0.1:8780"),
            ("origin", "http://evil.example"),
        ]);
        assert_eq!(g.admit(&uri, &foreign).unwrap_err().status, 403);
        let listed = headers(&[
            ("host", "127.0.0.1:8780"),
            ("origin", "https://console.example"),
        ]);
        assert!(g.admit(&uri, &listed).is_ok());
        // DNS rebinding: the page's origin matches Host, but Host is not loopback
        let rebound = headers(&[
            ("host", "evil.example:8780"),
            ("origin", "http://evil.example:8780"),
        ]);
        assert_eq!(g.admit(&uri, &rebound).unwrap_err().status, 403);
        let v6 = headers(&[("host", "[::1]:8780"), ("origin", "http://[::1]:8780")]);
        assert!(g.admit(&uri, &v6).is_ok());
    }

    #[test]
    fn origin_is_checked_even_without_auth() {
        let g = Gate {
            auth: Auth::Disabled,
            ..gate()
        };
        let foreign = headers(&[("host", "127.0.0.1:1"), ("origin", "http://evil.example")]);
        assert_eq!(
            g.admit(&"/ws".parse().unwrap(), &foreign)
                .unwrap_err()
                .status,
            403
        );
        assert!(g
            .admit(
                &"/ws".parse().unwrap(),
                &headers(&[("host", "127.0.0.1:1")])
            )
            .is_ok());
    }

    #[test]
    fn tokens_and_origins_are_validated() {
        assert_eq!(random_token().unwrap().len(), 64);
        assert_ne!(random_token().unwrap(), random_token().unwrap());
        assert!(validate_token("short", "--token").is_err());
        assert!(validate_token("has space inside", "--token").is_err());
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
        assert_eq!(
            normalize_origin("HTTPS://Console.Example/").as_deref(),
            Some("https://console.example")
        );
        assert_eq!(normalize_origin("console.example"), None);
        assert_eq!(normalize_origin("https://x/path"), None);
        assert_eq!(
            format!("{:?}", Auth::Token("zzz".into())),
            "Auth::Token(<redacted>)"
        );
    }
}
