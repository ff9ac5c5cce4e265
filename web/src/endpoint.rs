//! Where the page is ([`PageUrl`], read once at start-up) and the addresses it derives:
//! the websocket the console connects to, the VM list's `/api/vms`, each VM's console.
//!
//! The websocket is by default `ws` beside the page on its own origin (`/ws`; `ws:` for
//! `http:`, `wss:` for `https:`), or `ws/NAME` for a page at `vm/NAME`, carrying the page's
//! `token` query parameter. `?ws=URL` points it at another bridge.

/// The page's own URL, in the parts the app uses (as `window.location` gives them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageUrl {
    /// `http:` or `https:`.
    pub protocol: String,
    /// `host[:port]`.
    pub host: String,
    /// The path, e.g. `/` or `/vm/db`.
    pub path: String,
    /// The query string with its `?`, or empty.
    pub search: String,
}

impl PageUrl {
    /// Reads `window.location`: the one place the app asks where it is.
    pub fn from_window() -> PageUrl {
        let Some(location) = web_sys::window().map(|w| w.location()) else {
            return PageUrl::default();
        };
        PageUrl {
            protocol: location.protocol().unwrap_or_default(),
            host: location.host().unwrap_or_default(),
            path: location.pathname().unwrap_or_default(),
            search: location.search().unwrap_or_default(),
        }
    }

    /// The folder the page's files and websockets are in, and the VM it is for.
    pub fn location(&self) -> (String, Option<String>) {
        page_location(&self.path)
    }

    /// A console page: one VM's (`vm/NAME`) or pointed elsewhere with `?ws=`. Any other page
    /// asks `/api/vms` whether it is the VM list.
    pub fn is_console(&self) -> bool {
        self.location().1.is_some() || query_param(&self.search, "ws").is_some()
    }

    /// The websocket this page's console connects to.
    pub fn websocket_url(&self) -> String {
        websocket_url(&self.protocol, &self.host, &self.path, &self.search)
    }

    /// The bridge's VM list, beside the page (carrying the page's query, so its token).
    pub fn listing_url(&self) -> String {
        format!("{}api/vms{}", self.location().0, self.search)
    }

    /// The link to VM `name`'s console page.
    pub fn vm_page_href(&self, name: &str) -> String {
        format!("{}{}", self.vm_page_path(name), self.search)
    }

    /// The websocket of VM `name`'s console.
    pub fn vm_websocket_url(&self, name: &str) -> String {
        websocket_url(
            &self.protocol,
            &self.host,
            &self.vm_page_path(name),
            &self.search,
        )
    }

    /// Where VM `name` (a shut-off libvirt domain) is started: `POST` there.
    pub fn start_url(&self, name: &str) -> String {
        let folder = self.location().0;
        format!(
            "{folder}api/vms/{}/start{}",
            percent_encode(name),
            self.search
        )
    }

    fn vm_page_path(&self, name: &str) -> String {
        vm_page_path(&self.location().0, name)
    }

    /// The screen, keyboard and pointer of the VM this console is for:
    /// `vm/NAME/screen.png`, `vm/NAME/keys` and `vm/NAME/pointer` (`screen.png`, `keys` and
    /// `pointer` beside a single VM's console at `/`), carrying the page's query (so its
    /// token). `None` for a console pointed elsewhere with `?ws=`.
    pub fn screen_urls(&self) -> Option<ScreenUrls> {
        if query_param(&self.search, "ws").is_some() {
            return None;
        }
        let base = match self.location() {
            (folder, Some(vm)) => format!("{}/", vm_page_path(&folder, &vm)),
            (folder, None) => folder,
        };
        Some(ScreenUrls {
            screen: format!("{base}screen.png{}", self.search),
            keys: format!("{base}keys{}", self.search),
            pointer: format!("{base}pointer{}", self.search),
        })
    }

    /// VM `name`'s screen, for the VM list's thumbnails.
    pub fn vm_screen_url(&self, name: &str) -> String {
        format!("{}/screen.png{}", self.vm_page_path(name), self.search)
    }
}

/// Where a console's VM screen is read and its keys are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenUrls {
    /// `GET`: the screen as a PNG.
    pub screen: String,
    /// `POST`: key chords to type.
    pub keys: String,
    /// `POST`: a click.
    pub pointer: String,
}

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

/// `s` percent-encoded for a URL path segment or query value.
pub fn percent_encode(s: &str) -> String {
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

/// Where a page at `path` sits: the folder its files and websockets are in, and the VM
/// it is for. A bridge serving many VMs serves each one's console at `vm/NAME` and its
/// websocket at `ws/NAME`; otherwise the page is in the folder with `ws` (the root, or a
/// path prefix when a proxy puts the bridge under one).
pub fn page_location(path: &str) -> (String, Option<String>) {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if let Some((head, name)) = trimmed.rsplit_once('/') {
        if let Some(prefix) = head.strip_suffix("/vm") {
            if !name.is_empty() {
                return (format!("{prefix}/"), Some(percent_decode(name)));
            }
        }
    }
    let folder = path.rfind('/').map_or("/", |i| &path[..=i]);
    (folder.to_owned(), None)
}

/// The path of VM `name`'s console, for a page in `folder` (`/` or a proxy's prefix).
pub fn vm_page_path(folder: &str, name: &str) -> String {
    format!("{folder}vm/{}", percent_encode(name))
}

/// The websocket URL for a page at `protocol//host` + `path` with query `search`.
pub fn websocket_url(protocol: &str, host: &str, path: &str, search: &str) -> String {
    if let Some(url) = query_param(search, "ws").filter(|u| !u.is_empty()) {
        return url;
    }
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    let ws = match page_location(path) {
        (folder, Some(vm)) => format!("{folder}ws/{}", percent_encode(&vm)),
        (folder, None) => format!("{folder}ws"),
    };
    match query_param(search, "token").filter(|t| !t.is_empty()) {
        Some(token) => format!("{scheme}://{host}{ws}?token={}", percent_encode(&token)),
        None => format!("{scheme}://{host}{ws}"),
    }
}

/// `url` as the page shows it: a `token` parameter's value hidden, so a screenshot or a
/// shared screen does not give the VM away.
pub fn redact_token(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if percent_decode(k) == "token" && !v.is_empty() => format!("{k}=…"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_by_default() {
        assert_eq!(
            websocket_url("http:", "127.0.0.1:8780", "/", ""),
            "ws://127.0.0.1:8780/ws"
        );
        assert_eq!(
            websocket_url("https:", "vm.example:443", "/", "?x=1"),
            "wss://vm.example:443/ws"
        );
    }

    #[test]
    fn carries_the_token() {
        assert_eq!(
            websocket_url("http:", "h:1", "/", "?token=a%2Bb+c&y"),
            "ws://h:1/ws?token=a%2Bb%20c"
        );
    }

    #[test]
    fn vm_names_survive_the_round_trip() {
        let path = vm_page_path("/", "web 1#a?b%");
        assert_eq!(path, "/vm/web%201%23a%3Fb%25");
        assert_eq!(
            page_location(&path),
            ("/".to_owned(), Some("web 1#a?b%".to_owned()))
        );
        assert_eq!(
            websocket_url("http:", "h:1", &path, ""),
            "ws://h:1/ws/web%201%23a%3Fb%25"
        );
    }

    #[test]
    fn ws_parameter_points_elsewhere() {
        assert_eq!(
            websocket_url(
                "http:",
                "h:1",
                "/vm/db",
                "?ws=wss%3A%2F%2Fother%3A9%2Fws%3Ftoken%3Dz&token=t"
            ),
            "wss://other:9/ws?token=z"
        );
    }

    #[test]
    fn a_vm_page_uses_that_vm_s_websocket() {
        let loc = |p: &str| page_location(p);
        assert_eq!(loc("/"), ("/".into(), None));
        assert_eq!(loc("/index.html"), ("/".into(), None));
        assert_eq!(loc(""), ("/".into(), None));
        assert_eq!(loc("/vm/db"), ("/".into(), Some("db".into())));
        assert_eq!(loc("/vm/web%201/"), ("/".into(), Some("web 1".into())));
        assert_eq!(loc("/vm/"), ("/vm/".into(), None));
        assert_eq!(loc("/somevm/x"), ("/somevm/".into(), None));
        assert_eq!(loc("/qmp/vm/db"), ("/qmp/".into(), Some("db".into())));
        assert_eq!(
            websocket_url("https:", "h:1", "/vm/web%201", "?token=t"),
            "wss://h:1/ws/web%201?token=t"
        );
        assert_eq!(
            websocket_url("http:", "h:1", "/vm/db", ""),
            "ws://h:1/ws/db"
        );
        // behind a proxy under a path prefix
        assert_eq!(websocket_url("https:", "h", "/qmp/", ""), "wss://h/qmp/ws");
        assert_eq!(
            websocket_url("https:", "h", "/qmp/vm/db", ""),
            "wss://h/qmp/ws/db"
        );
    }

    #[test]
    fn the_token_is_not_shown() {
        assert_eq!(
            redact_token("ws://h/ws?token=s3cret&x=1"),
            "ws://h/ws?token=…&x=1"
        );
        assert_eq!(redact_token("ws://h/ws"), "ws://h/ws");
        assert_eq!(redact_token("wss://h/ws?a=1"), "wss://h/ws?a=1");
    }

    #[test]
    fn what_a_page_derives_from_its_url() {
        let list = PageUrl {
            protocol: "https:".into(),
            host: "h:1".into(),
            path: "/qmp/".into(),
            search: "?token=t".into(),
        };
        assert!(!list.is_console());
        assert_eq!(list.websocket_url(), "wss://h:1/qmp/ws?token=t");
        assert_eq!(list.listing_url(), "/qmp/api/vms?token=t");
        assert_eq!(list.vm_page_href("web 1"), "/qmp/vm/web%201?token=t");
        assert_eq!(
            list.vm_websocket_url("web 1"),
            "wss://h:1/qmp/ws/web%201?token=t"
        );
        let vm = PageUrl {
            path: "/qmp/vm/db".into(),
            ..list.clone()
        };
        assert!(vm.is_console());
        assert_eq!(vm.websocket_url(), "wss://h:1/qmp/ws/db?token=t");
        let elsewhere = PageUrl {
            search: "?ws=ws%3A%2F%2Fo%2Fws".into(),
            ..list
        };
        assert!(elsewhere.is_console());
        assert_eq!(elsewhere.websocket_url(), "ws://o/ws");
        assert_eq!(PageUrl::default().listing_url(), "/api/vms");
    }

    #[test]
    fn where_the_screen_is() {
        let page = |path: &str, search: &str| PageUrl {
            protocol: "http:".into(),
            host: "h:1".into(),
            path: path.into(),
            search: search.into(),
        };
        let vm = page("/qmp/vm/web%201", "?token=t").screen_urls().unwrap();
        assert_eq!(vm.screen, "/qmp/vm/web%201/screen.png?token=t");
        assert_eq!(vm.keys, "/qmp/vm/web%201/keys?token=t");
        assert_eq!(vm.pointer, "/qmp/vm/web%201/pointer?token=t");
        let single = page("/", "?token=t").screen_urls().unwrap();
        assert_eq!(single.screen, "/screen.png?token=t");
        assert_eq!(single.keys, "/keys?token=t");
        assert_eq!(page("/", "?ws=ws%3A%2F%2Fo%2Fws").screen_urls(), None);
        assert_eq!(
            page("/", "?token=t").vm_screen_url("a b"),
            "/vm/a%20b/screen.png?token=t"
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
