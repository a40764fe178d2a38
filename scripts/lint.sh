#!/usr/bin/env bash
# Formatting and lints, as CI checks them: rustfmt --check and clippy with warnings denied.
# Extra arguments go to clippy (e.g. `-p spinescreen-runtime`); default the whole workspace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo fmt --all -- --check
if [ $# -eq 0 ]; then set -- --workspace; fi
cargo clippy "$@" --all-targets -- -D warnings
