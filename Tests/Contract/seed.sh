#!/usr/bin/env bash
# Seeds a fresh carmad with the data the contract test (run.sh) expects, through the API:
#
#   alpha   links beta, gamma; tags greek, first; metadata; embedding [0.1, 0.2, 0.3]
#           (the store's first embedding: it fixes the embedding dimension at 3, which hooks.py
#           relies on)
#   beta    links alpha; tag greek
#   gamma   links delta and nowhere (an id nobody stores); tags greek, third
#   delta   no links, no tags
#   lost    links alpha; tag doomed; made BLANK: its primary log record is zeroed and it is
#           read once, so the server notices (reason checksum_mismatch, detected_by read) and queues it
#
# Usage: Tests/Contract/seed.sh URL DATA_DIR [--token TOKEN]
#   URL       the server, e.g. http://127.0.0.1:18090
#   DATA_DIR  the server's --data-dir (the primary log lives in DATA_DIR/segments/*.seg), or for
#             cluster mode its postgresql:// database URL ("lost" then loses its payload row:
#             reason missing)
#   TOKEN     the bearer token, when the server runs with --auth-token-file
#
# The server must be fresh (empty data directory) and started with the dream engine held off
# (--dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000), or a cycle could
# repair the blank before the test sees it, and with --cache-bytes 0: with a payload cache every
# PUT leaves the body in memory, reads are served from there without touching the file, and the
# zeroed record would go unnoticed (the fragment would stay ok). Exits non-zero if any step fails.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 URL DATA_DIR [--token TOKEN]" >&2
  exit 2
fi
url=${1%/}
data_dir=$2
shift 2
auth=()
if [ "${1:-}" = "--token" ]; then
  [ -n "${2:-}" ] || { echo "--token needs a value" >&2; exit 2; }
  auth=(-H "Authorization: Bearer $2")
elif [ $# -gt 0 ]; then
  echo "unknown argument: $1" >&2
  exit 2
fi

put() {
  local id=$1 body=$2 code
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "$url/fragments/$id" "${auth[@]}" \
    -H 'Content-Type: application/json' --data-binary "$body")
  if [ "$code" != 201 ]; then
    echo "seed: PUT /fragments/$id answered $code, expected 201 (is the store fresh?)" >&2
    exit 1
  fi
}

put alpha '{"content":"The alpha fragment opens the seed set and links to beta and gamma.","links":["beta","gamma"],"tags":["greek","first"],"metadata":{"source":"seed","rank":{"n":1}},"embedding":[0.1,0.2,0.3]}'
put beta '{"content":"Beta follows alpha in the Greek alphabet.","links":["alpha"],"tags":["greek"]}'
put gamma '{"content":"Gamma links to delta and to an id nobody stored.","links":["delta","nowhere"],"tags":["greek","third"]}'
put delta '{"content":"Delta has no links and no tags."}'
put lost '{"content":"This fragment is made blank by the seed: its primary log record is zeroed.","links":["alpha"],"tags":["doomed"]}'

# Zero every record of "lost" in the primary log, in place, as a bad sector would (the redundancy
# log keeps its copy); in cluster mode, delete its payload row (carma_redundancy keeps the copy).
target=lost
if [[ $data_dir == postgresql://* ]]; then
  removed=$(psql -X -A -t -q -d "$data_dir" -c "WITH d AS (DELETE FROM carma_payloads WHERE id = '$target' RETURNING 1) SELECT count(*) FROM d")
else
  removed=$(python3 "$(dirname "$0")/../../scripts/zero-records.py" "$data_dir" "$target")
fi
if [ "$removed" = 0 ]; then
  echo "seed: no record for '$target' in $data_dir (wrong DATA_DIR?)" >&2
  exit 1
fi

# One read: the server finds the record corrupt, marks the fragment blank and answers the stub.
status=$(curl -sS -o /dev/null -D - "${auth[@]}" "$url/fragments/$target" | tr -d '\r' |
  awk -F': ' 'tolower($1) == "x-fragment-status" { print $2 }')
if [ "$status" != blank ]; then
  echo "seed: after zeroing its record, '$target' reads as '${status:-?}', not blank" >&2
  echo "seed: (was the server started with --cache-bytes 0? a cached body hides the loss)" >&2
  exit 1
fi
echo "seed: 5 fragments stored (alpha beta gamma delta lost), 'lost' is blank"
