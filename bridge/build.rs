//! Embeds the built web UI (`dist/`, or `$QMP_CONSOLE_DIST`) into the binary, so a release
//! `qmp-bridge` is the whole deployment. Without a built UI it embeds nothing and the
//! bridge serves a page saying how to build it (or use `--ui-dir`).
//! Why this and not `rust-embed`: see `src/assets.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-env-changed=QMP_CONSOLE_DIST");
    let dist = std::env::var_os("QMP_CONSOLE_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("..").join("dist"));
    println!("cargo:rerun-if-changed={}", dist.display());

    let mut files = Vec::new();
    collect(&dist, &mut files);
    files.sort();
    let mut code = String::from("/// Files of the built UI: (path relative to dist/, contents).\n");
    code.push_str("pub static EMBEDDED: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let rel = file.strip_prefix(&dist).expect("below dist");
        let rel = rel.to_string_lossy().replace('\\', "/");
        let abs = file.canonicalize().expect("readable file");
        println!("cargo:rerun-if-changed={}", abs.display());
        writeln!(
            code,
            "    ({rel:?}, include_bytes!({:?})),",
            abs.display().to_string()
        )
        .expect("string write");
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("embedded_ui.rs"), code).expect("write embedded_ui.rs");
}
