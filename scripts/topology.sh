#!/usr/bin/env bash
# Renders a running server's link graph to SVG with Graphviz, coloured by status
# (green ok, red blank, amber reconstructed).
#   scripts/topology.sh OUT.svg [URL] [QUERY]
#   scripts/topology.sh before.svg http://127.0.0.1:8080 'limit=300'
#   scripts/topology.sh around.svg http://127.0.0.1:8080 'around=man1.ls.1&depth=2'
set -euo pipefail
out=${1:?usage: topology.sh OUT.svg [URL] [QUERY]}
url=${2:-http://127.0.0.1:8080}
query=${3:-limit=300}
command -v dot >/dev/null || { echo "Graphviz 'dot' is needed: apt-get install graphviz" >&2; exit 1; }
curl -fsS "$url/topology?format=dot&$query" | dot -Ksfdp -Tsvg -o "$out"
echo "wrote $out" >&2
