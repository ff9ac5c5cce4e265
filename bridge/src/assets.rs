//! The web UI over HTTP: embedded at build time (see `build.rs`), or read from `--ui-dir`.
//!
//! A request for `x` is answered with `x.br` when the browser accepts brotli, else `x.gz`
//! when it accepts gzip, when that file exists (the web build writes all three), with the
//! right content type (`application/wasm` for
//! the module) and `Vary: Accept-Encoding`. The server adds the headers every response
//! carries (no framing, no referrer, no sniffing).
//!
//! The embedding is `build.rs` (fifty lines, no dependency) rather than `rust-embed`:
//! that crate reads the files from disk at run time in debug builds (the tests) unless
//! its `debug-embed` feature is on, does not notice files added to `dist/` after a build
//! (the build script reruns on any change in the folder, or once it appears), needs its
//! `interpolate-folder-path` feature for `$QMP_CONSOLE_DIST`, and its `compression`
//! inflates files at run time instead of sending the web build's `.gz` as they are, so
//! the gzip negotiation below would stay anyway; all for 8 more crates in the binary.

use std::borrow::Cow;
use std::path::PathBuf;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_ui.rs"));
}

/// Where the UI's files come from.
#[derive(Debug, Clone)]
pub enum Ui {
    Embedded,
    Dir(PathBuf),
}

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>qmp-console</title>\
<h1>qmp-console: UI not built</h1><p>This qmp-bridge was built without the web UI. \
Run <code>./scripts/build</code> and rebuild, or start it with <code>--ui-dir DIR</code>. \
The websocket endpoint <code>/ws</code> works regardless.</p>";

impl Ui {
    /// Number of files the UI has embedded (0 when built without one).
    pub fn embedded_files() -> usize {
        embedded::EMBEDDED.len()
    }

    async fn read(&self, path: &str) -> Option<Cow<'static, [u8]>> {
        match self {
            Ui::Embedded => embedded::EMBEDDED
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, bytes)| Cow::Borrowed(*bytes)),
            Ui::Dir(dir) => tokio::fs::read(dir.join(path)).await.ok().map(Cow::Owned),
        }
    }

    /// Answers a GET for `path` (as in the URL, leading `/` included).
    pub async fn respond(&self, path: &str, request_headers: &HeaderMap) -> Response {
        let Some(path) = clean_path(path) else {
            return (StatusCode::NOT_FOUND, "not found\n").into_response();
        };
        let mut found = None;
        for (encoding, suffix) in [("br", ".br"), ("gzip", ".gz")] {
            if found.is_none() && accepts(request_headers, encoding) {
                let file = format!("{path}{suffix}");
                found = self.read(&file).await.map(|b| (b, Some(encoding)));
            }
        }
        if found.is_none() {
            found = self.read(&path).await.map(|b| (b, None));
        }
        let (body, encoding) = match found {
            Some(f) => f,
            None if path == "index.html" && matches!(self, Ui::Embedded) => {
                (Cow::Borrowed(NOT_BUILT.as_bytes()), None)
            }
            None => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
        };
        let mut response = body.into_owned().into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&path)),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if let Some(encoding) = encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        response
    }
}

/// `/` is `index.html`; anything reaching outside the UI folder is refused.
fn clean_path(path: &str) -> Option<String> {
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        return Some("index.html".into());
    }
    let ok = path
        .split('/')
        .all(|c| !c.is_empty() && !c.starts_with('.') && !c.contains('\\'));
    ok.then(|| path.to_owned())
}

/// Whether the request's `Accept-Encoding` takes `encoding` (or `*`), not at `q=0`.
fn accepts(headers: &HeaderMap, encoding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case(encoding) || name == "*") && !refused
        })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_ui() {
        assert_eq!(clean_path("/").as_deref(), Some("index.html"));
        assert_eq!(clean_path("/pkg/app.js").as_deref(), Some("pkg/app.js"));
        for bad in [
            "/../etc/passwd",
            "/a/../../b",
            "/.git/config",
            "/a//b",
            "/a\\..\\b",
        ] {
            assert_eq!(clean_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn encoding_negotiation() {
        let accepts_gzip = |h: &HeaderMap| accepts(h, "gzip");
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        assert!(!accepts(&h, "br"));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0, br"),
        );
        assert!(!accepts_gzip(&h));
        assert!(accepts(&h, "br"));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate"),
        );
        assert!(!accepts(&h, "br"));
    }

    #[test]
    fn wasm_has_its_type() {
        assert_eq!(content_type("qmp_web_bg.wasm"), "application/wasm");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
    }
}
