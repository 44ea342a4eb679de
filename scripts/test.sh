#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, and runs every test (unit, handler and live
# tests against real carmad processes, the OpenAPI contract checks).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# The embedding models' tests and live tests read them from here; without them they would not run.
# CARMA_TEST_EMBEDDING_MODEL is the default model; the model-change and reference tests take both.
CARMA_TEST_EMBEDDING_MODEL=$(scripts/model-path.sh)
CARMA_TEST_MINILM_MODEL=$(scripts/model-path.sh minilm)
CARMA_TEST_BGE_MODEL=$(scripts/model-path.sh bge-small)
export CARMA_TEST_EMBEDDING_MODEL CARMA_TEST_MINILM_MODEL CARMA_TEST_BGE_MODEL
swift build --build-tests
swift test --skip-build "$@"

# The Python client (clients/python) against the carmad built above. pytest is usually present
# (install-deps.sh --test brings PyYAML); a failing test fails this script (set -e), and pytest's
# closing summary line is the last thing printed.
python3 -c 'import pytest' >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check pytest
# The Python scripts: the evaluation scripts' pure parts, the agent-memory evaluation set and the
# man-page corpus builder (scripts/mancorpus) on tiny inputs (no carmad, no model, no network).
python3 -m pytest -q -p no:cacheprovider Tests/Scripts
# `carma mcp` driven by a real MCP client (the mcp package) against live carmad processes.
CARMA_BIN="$(swift build --show-bin-path)/carmad" python3 -m pytest -q -p no:cacheprovider Tests/MCP
CARMA_BIN="$(swift build --show-bin-path)/carmad" python3 -m pytest -q -p no:cacheprovider clients/python/tests
# Namespaces against a hostile tenant: tokens, isolation, reconstruction sources, deletion (kill -9,
# restart, reindex), quotas and batches, on live carmad processes.
CARMA_BIN="$(swift build --show-bin-path)/carmad" python3 -m pytest -q -p no:cacheprovider Tests/Namespaces
# The web console in headless Chromium (Selenium, chromium-driver); screenshots go to bench-results/console.
CARMA_BIN="$(swift build --show-bin-path)/carmad" python3 -m pytest -q -p no:cacheprovider Tests/Console
