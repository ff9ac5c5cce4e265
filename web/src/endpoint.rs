//! The websocket URL the console connects to.
//!
//! By default `/ws` on the page's own origin (`ws:` for `http:`, `wss:` for `https:`),
//! carrying the page's `token` query parameter. `?ws=URL` points it at another bridge.

/// Reads `name` from a URL query string (`?a=1&b=2`), percent-decoded.
pub fn query_param(search: &str, name: &str) -> Option<String> {
    search
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| percent_decode(k) == name)
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The websocket URL for a page at `protocol//host` with query `search`.
pub fn websocket_url(protocol: &str, host: &str, search: &str) -> String {
    if let Some(url) = query_param(search, "ws").filter(|u| !u.is_empty()) {
        return url;
    }
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    match query_param(search, "token").filter(|t| !t.is_empty()) {
        Some(token) => format!("{scheme}://{host}/ws?token={}", percent_encode(&token)),
        None => format!("{scheme}://{host}/ws"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_by_default() {
        assert_eq!(websocket_url("http:", "127.0.0.1:8780", ""), "ws://127.0.0.1:8780/ws");
        assert_eq!(websocket_url("https:", "vm.example:443", "?x=1"), "wss://vm.example:443/ws");
    }

    #[test]
    fn carries_the_token() {
        assert_eq!(
            websocket_url("http:", "h:1", "?token=a%2Bb+c&y"),
            "ws://h:1/ws?token=a%2Bb%20c"
        );
    }

    #[test]
    fn ws_parameter_points_elsewhere() {
        assert_eq!(
            websocket_url("http:", "h:1", "?ws=wss%3A%2F%2Fother%3A9%2Fws%3Ftoken%3Dz&token=t"),
            "wss://other:9/ws?token=z"
        );
    }

    #[test]
    fn bad_escapes_survive() {
        assert_eq!(query_param("?a=100%&b=%zz", "a").as_deref(), Some("100%"));
        assert_eq!(query_param("?a=100%&b=%zz", "b").as_deref(), Some("%zz"));
        assert_eq!(query_param("?flag", "flag").as_deref(), Some(""));
        assert_eq!(query_param("", "x"), None);
    }
}
