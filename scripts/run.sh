#!/usr/bin/env bash
# Runs carmad on its embedded default (segment logs and a SQLite registry under ./carma-data), after
# installing the system libraries and the embedding model and building a release binary. Flags are
# passed to carmad; CARMA_EMBEDDING_MODEL= (empty) runs it without the model (words only).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product carmad
swift build -c release --product carma
if [ -z "${CARMA_EMBEDDING_MODEL+set}" ]; then
  CARMA_EMBEDDING_MODEL=$(scripts/model-path.sh)
  export CARMA_EMBEDDING_MODEL
fi
exec .build/release/carmad "$@"
