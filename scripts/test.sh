#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, and runs every test (unit, handler and live
# tests against real carmad processes, the OpenAPI contract checks).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
swift build --build-tests
swift test --skip-build "$@"
