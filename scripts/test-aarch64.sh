#!/usr/bin/env bash
# Runs the entropy kernel suite (src/inspect/entropy, NEON kernel included) built for
# aarch64 under qemu-user. Installs the cross linker, the aarch64 libc and qemu-user with
# apt, and the Rust target with rustup, when they are missing. When they cannot be
# installed (no network, no root) it prints "skipped: <why>" and exits 0; a failing test
# fails the script. The linker and runner come from .cargo/config.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
target=aarch64-unknown-linux-gnu

skip() {
    echo "test-aarch64: skipped: $*"
    exit 0
}

missing=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || missing+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || skip "no apt-get to install ${missing[*]}"
    as_root=()
    if [ "$(id -u)" != 0 ]; then
        sudo -n true 2>/dev/null || skip "not root and no password-less sudo to install ${missing[*]}"
        as_root=(sudo -n)
    fi
    echo "test-aarch64: installing ${missing[*]}"
    if ! { "${as_root[@]}" apt-get update -qq &&
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; }; then
        skip "could not install ${missing[*]} with apt-get (no network?)"
    fi
fi
libdir="$(rustc --print target-libdir --target "$target" 2>/dev/null || true)"
if [ -z "$libdir" ] || [ ! -d "$libdir" ]; then
    command -v rustup >/dev/null 2>&1 || skip "the Rust target $target is missing and there is no rustup"
    rustup target add "$target" || skip "could not add the Rust target $target (no network?)"
fi

# No debug info: the cross build (every dev-dependency included) is most of this script's
# time, and assertion messages carry their locations without it.
export CARGO_PROFILE_TEST_DEBUG=false
echo "test-aarch64: cargo test --target $target --lib inspect::entropy (under qemu-aarch64)"
cargo test --target "$target" --lib inspect::entropy 2>&1
