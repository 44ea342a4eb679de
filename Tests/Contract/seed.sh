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
# and two namespaces besides `default`, so that the routes under /namespaces/{ns} have data too:
#
#   team    created by PUT /namespaces/team with a quota of 100000 fragments (no byte limit), then
#           alpha  (links beta; tags greek, team; embedding [0.3, 0.2, 0.1])
#           beta   (links alpha and nowhere; tag greek)    both written in one batch, POST
#                  /namespaces/team/fragments
#           lost   (links alpha; tag doomed) made BLANK like default's `lost` (its key is team/lost)
#   doomed  created by its first write, the fragment `gone` (links alpha); there to be deleted
#           (hooks.py sends DELETE /namespaces/team there instead)
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

# send METHOD PATH BODY EXPECTED: one request; stops the seed unless it answers EXPECTED.
send() {
  local method=$1 path=$2 body=$3 expected=$4 code
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X "$method" "$url$path" "${auth[@]}" \
    -H 'Content-Type: application/json' --data-binary "$body")
  if [ "$code" != "$expected" ]; then
    echo "seed: $method $path answered $code, expected $expected (is the store fresh?)" >&2
    exit 1
  fi
}

put() {
  send PUT "/fragments/$1" "$2" 201
}

put alpha '{"content":"The alpha fragment opens the seed set and links to beta and gamma.","links":["beta","gamma"],"tags":["greek","first"],"metadata":{"source":"seed","rank":{"n":1}},"embedding":[0.1,0.2,0.3]}'
put beta '{"content":"Beta follows alpha in the Greek alphabet.","links":["alpha"],"tags":["greek"]}'
put gamma '{"content":"Gamma links to delta and to an id nobody stored.","links":["delta","nowhere"],"tags":["greek","third"]}'
put delta '{"content":"Delta has no links and no tags."}'
put lost '{"content":"This fragment is made blank by the seed: its primary log record is zeroed.","links":["alpha"],"tags":["doomed"]}'

send PUT /namespaces/team '{"quota":{"fragments":100000,"bytes":null}}' 201
batch=$(curl -sS -X POST "$url/namespaces/team/fragments" "${auth[@]}" -H 'Content-Type: application/json' --data-binary \
  '{"fragments":[{"id":"alpha","content":"The team alpha opens the team namespace and links to its beta.","links":["beta"],"tags":["greek","team"],"embedding":[0.3,0.2,0.1]},{"id":"beta","content":"The team beta links back to alpha and to an id nobody stored.","links":["alpha","nowhere"],"tags":["greek"]}]}')
if ! python3 -c 'import json, sys; r = json.loads(sys.argv[1]); sys.exit(0 if r.get("created") == 2 and r.get("failed") == 0 else 1)' "$batch"; then
  echo "seed: POST /namespaces/team/fragments did not create alpha and beta: $batch" >&2
  exit 1
fi
send PUT /namespaces/team/fragments/lost '{"content":"The team lost fragment is made blank by the seed as well.","links":["alpha"],"tags":["doomed"]}' 201
send PUT /namespaces/doomed/fragments/gone '{"content":"This namespace is deleted by the contract test.","links":["alpha"]}' 201

# Zero every record of "lost" (key `lost`) and of team's "lost" (key `team/lost`) in the primary
# log, in place, as a bad sector would (the redundancy log keeps its copy); in cluster mode,
# delete their payload rows (carma_redundancy keeps the copies). Then one read of each: the server
# finds the record corrupt, marks the fragment blank and answers the stub.
for target in lost team/lost; do
  if [[ $data_dir == postgresql://* ]]; then
    removed=$(psql -X -A -t -q -d "$data_dir" -c "WITH d AS (DELETE FROM carma_payloads WHERE id = '$target' RETURNING 1) SELECT count(*) FROM d")
  else
    removed=$(python3 "$(dirname "$0")/../../scripts/zero-records.py" "$data_dir" "$target")
  fi
  if [ "$removed" = 0 ]; then
    echo "seed: no record for '$target' in $data_dir (wrong DATA_DIR?)" >&2
    exit 1
  fi
  path=/fragments/$target
  [ "$target" = lost ] || path=/namespaces/${target%%/*}/fragments/${target#*/}
  status=$(curl -sS -o /dev/null -D - "${auth[@]}" "$url$path" | tr -d '\r' |
    awk -F': ' 'tolower($1) == "x-fragment-status" { print $2 }')
  if [ "$status" != blank ]; then
    echo "seed: after zeroing its record, '$target' reads as '${status:-?}', not blank" >&2
    echo "seed: (was the server started with --cache-bytes 0? a cached body hides the loss)" >&2
    exit 1
  fi
done
echo "seed: default: 5 fragments (alpha beta gamma delta lost); team: 3 (alpha beta lost); doomed: 1 (gone); both 'lost' are blank"
