#!/usr/bin/env bash
# Runs carmad on its embedded default (segment logs and a SQLite registry under ./carma-data), after
# installing the system libraries and building a release binary. Flags are passed to carmad.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product carmad
swift build -c release --product carma
exec .build/release/carmad "$@"
