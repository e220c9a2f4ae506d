#!/usr/bin/env bash
# Supply chain: cargo deny checks licences, duplicate versions and sources (deny.toml), and the
# RustSec advisories where their database (on GitHub) can be fetched. Installs cargo-deny from
# crates.io when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deny >/dev/null 2>&1 || cargo install --locked cargo-deny@0.20.2
cargo deny check licenses bans sources
if [ "${PASAR_DENY_ADVISORIES:-}" = 1 ] || timeout 5 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  cargo deny check advisories
else
  echo "cargo deny: advisories NOT checked — the RustSec database (github.com/rustsec/advisory-db) is unreachable from here; set PASAR_DENY_ADVISORIES=1 where it is" >&2
fi
