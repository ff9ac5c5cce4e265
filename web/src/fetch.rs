//! HTTP requests from the page (`window.fetch`).

use crate::fleet::{parse_listing, Listing};

/// The body of a GET of `url` (relative to the page); an HTTP error status is an error
/// that carries the body.
pub async fn fetch_text(url: &str) -> Result<String, String> {
    request(url, "GET").await
}

/// The body of a POST (without a body) to `url`, as [`fetch_text`].
pub async fn post_text(url: &str) -> Result<String, String> {
    request(url, "POST").await
}

async fn request(url: &str, method: &str) -> Result<String, String> {
    use wasm_bindgen::JsCast;
    let window = web_sys::window().ok_or("no window")?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let resp = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| format!("{url}: {e:?}"))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| "not a response")?;
    let body = wasm_bindgen_futures::JsFuture::from(resp.text().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let body = body.as_string().unwrap_or_default();
    if !resp.ok() {
        return Err(format!("{url}: HTTP {}: {}", resp.status(), body.trim()));
    }
    Ok(body)
}

/// The bridge's VM list (`/api/vms`) at `url`, read.
pub async fn fetch_listing(url: &str) -> Result<Listing, String> {
    parse_listing(&fetch_text(url).await?)
}
