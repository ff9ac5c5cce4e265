# Shared by the scripts in this folder: paths, messages, and the wasm toolchain choice.
# Sourced, not run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="$ROOT/dist"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$HOME/.cargo/bin:$PATH"
# Which wasm toolchain `scripts/setup` chose: "rustup" or "debian".
TOOLCHAIN_FILE="$CARGO_TARGET_DIR/wasm-toolchain"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The wasm-bindgen version Cargo.lock pins.
locked_wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

# Runs cargo for the wasm32 target with the chosen toolchain, in its own target dir so the
# native and the wasm compilers never rebuild each other's artifacts.
wasm_cargo() {
  local choice
  choice="$(cat "$TOOLCHAIN_FILE" 2>/dev/null)" || die "no wasm toolchain chosen yet: run scripts/setup"
  case "$choice" in
    rustup)
      cargo "$@" --target wasm32-unknown-unknown --target-dir "$CARGO_TARGET_DIR/wasm" ;;
    debian)
      RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 /usr/bin/cargo "$@" \
        --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
        --target-dir "$CARGO_TARGET_DIR/wasm-debian" ;;
    *) die "unknown wasm toolchain '$choice' in $TOOLCHAIN_FILE: run scripts/setup" ;;
  esac
}

# Where wasm_cargo puts its output for PROFILE.
wasm_out_dir() {
  local choice
  choice="$(cat "$TOOLCHAIN_FILE")"
  case "$choice" in
    rustup) echo "$CARGO_TARGET_DIR/wasm/wasm32-unknown-unknown/$1" ;;
    debian) echo "$CARGO_TARGET_DIR/wasm-debian/wasm32-unknown-unknown/$1" ;;
  esac
}
