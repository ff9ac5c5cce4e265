//! HTTP requests from the page (`window.fetch`): GETs of text and pictures, POSTs of JSON.

use wasm_bindgen::JsCast;

use crate::fleet::{parse_listing, Listing};

/// Sends a request for `url` (relative to the page) and waits for the response's head.
async fn request(url: &str, init: &web_sys::RequestInit) -> Result<web_sys::Response, String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(url, init))
        .await
        .map_err(|e| format!("{url}: {e:?}"))?;
    resp.dyn_into().map_err(|_| "not a response".into())
}

/// A response's body as text.
async fn body_text(resp: &web_sys::Response) -> Result<String, String> {
    let body = wasm_bindgen_futures::JsFuture::from(resp.text().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(body.as_string().unwrap_or_default())
}

/// An HTTP error status as an error carrying the body, in the bridge's words.
async fn refused(resp: &web_sys::Response) -> String {
    let body = body_text(resp).await.unwrap_or_default();
    let body = body.trim().trim_start_matches("qmp-bridge: ");
    format!("HTTP {}: {body}", resp.status())
}

/// Request headers: `pairs` of names and values.
fn headers(pairs: &[(&str, &str)]) -> Result<web_sys::Headers, String> {
    let headers = web_sys::Headers::new().map_err(|e| format!("{e:?}"))?;
    for (name, value) in pairs {
        headers.set(name, value).map_err(|e| format!("{e:?}"))?;
    }
    Ok(headers)
}

/// The body of a GET of `url` (relative to the page); an HTTP error status is an error
/// that carries the body.
pub async fn fetch_text(url: &str) -> Result<String, String> {
    text_of(url, "GET").await
}

/// The body of a POST (without a body) to `url`, as [`fetch_text`].
pub async fn post_text(url: &str) -> Result<String, String> {
    text_of(url, "POST").await
}

async fn text_of(url: &str, method: &str) -> Result<String, String> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let resp = request(url, &init).await?;
    if !resp.ok() {
        return Err(format!("{url}: {}", refused(&resp).await));
    }
    body_text(&resp).await
}

/// The bridge's VM list (`/api/vms`) at `url`, read.
pub async fn fetch_listing(url: &str) -> Result<Listing, String> {
    parse_listing(&fetch_text(url).await?)
}

/// What a read of a picture brought.
#[derive(Debug)]
pub enum Picture {
    /// A new picture, and its `ETag`.
    New {
        blob: gloo_file::Blob,
        etag: Option<String>,
    },
    /// The same as the one whose `ETag` was sent (HTTP 304).
    Unchanged,
}

/// GETs an image at `url`, sending `etag` as `If-None-Match`. An HTTP error is an error
/// that carries the body (the bridge says in words why there is no screen), and so is a
/// 204, with the bridge's `X-Screen-Problem` (a VM without a display).
pub async fn fetch_picture(url: &str, etag: Option<&str>) -> Result<Picture, String> {
    let init = web_sys::RequestInit::new();
    if let Some(etag) = etag {
        let conditional = headers(&[("If-None-Match", etag)])?;
        init.set_headers(&conditional);
    }
    let resp = request(url, &init).await?;
    match resp.status() {
        304 => return Ok(Picture::Unchanged),
        204 => {
            let why = resp.headers().get("X-Screen-Problem").ok().flatten();
            return Err(why.unwrap_or_else(|| "no picture".into()));
        }
        _ if !resp.ok() => return Err(refused(&resp).await),
        _ => {}
    }
    let etag = resp.headers().get("ETag").ok().flatten();
    let blob = wasm_bindgen_futures::JsFuture::from(resp.blob().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let blob: web_sys::Blob = blob.dyn_into().map_err(|_| "not a blob")?;
    Ok(Picture::New {
        blob: gloo_file::Blob::from(blob),
        etag,
    })
}

/// POSTs `body` (JSON) to `url`; the answer's body, or an error carrying it.
pub async fn post_json(url: &str, body: &str) -> Result<String, String> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&wasm_bindgen::JsValue::from_str(body));
    let json = headers(&[("Content-Type", "application/json")])?;
    init.set_headers(&json);
    let resp = request(url, &init).await?;
    if !resp.ok() {
        return Err(refused(&resp).await);
    }
    body_text(&resp).await
}
