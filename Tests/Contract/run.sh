#!/usr/bin/env bash
# Contract test: schemathesis checks a running carmad against openapi.yaml (every check, every
# phase: examples, coverage, fuzzing, stateful), with a fixed seed.
#
# Usage (from anywhere, e.g. the repository root):
#   Tests/Contract/run.sh URL [--token TOKEN]
#     URL    the server, e.g. http://127.0.0.1:18090
#     TOKEN  sent as `Authorization: Bearer TOKEN` on every request (for a server started with
#            --auth-token-file; reads must still work without it unless --protect-reads)
#
# The server it expects:
#   * a fresh data directory, started with the dream engine held off and without a payload cache:
#       carmad --data-dir DIR --port PORT --dream-interval 3600 --dream-max-interval 3600 \
#              --dream-idle-delay 100000 --cache-bytes 0 [--auth-token-file FILE]
#   * seeded by the caller with Tests/Contract/seed.sh URL DIR [--token TOKEN], which stores
#       alpha  (links beta, gamma; tags greek, first; metadata; embedding [0.1, 0.2, 0.3], which
#               fixes the store's embedding dimension at 3, as hooks.py assumes)
#       beta   (links alpha; tag greek)
#       gamma  (links delta and the unknown id nowhere; tags greek, third)
#       delta  (no links, no tags)
#       lost   (links alpha; tag doomed) made blank: its primary log record zeroed, then read once
#     in namespace `default`, the namespace `team` (a quota; alpha, beta and a blank lost) and the
#     namespace `doomed` (one fragment, there to be deleted), so that reads, listings, links,
#     topology, context, queries and blank stubs (200 and the strict 503) all have data to answer
#     with, with and without the /namespaces/{ns} prefix. The test writes to the store (PUT,
#     DELETE, batches, namespaces, POST /dream), so seed a fresh server for every run.
#
# Tunables (environment): CONTRACT_MAX_EXAMPLES (default 200 per operation and phase),
# CONTRACT_NAMESPACED_EXAMPLES (default a quarter of that: the copies of the fragment routes under
# /namespaces/{ns}, which run the same code as the routes of `default`), CONTRACT_SEED (default
# 20261130), CONTRACT_WORKERS (default 1), CONTRACT_KEEP=1 keeps the reports even when the run
# passes. With the defaults a run takes one to two minutes against a debug build on 2 cores.
#
# Nothing is written outside one mktemp directory under $TMPDIR (schemathesis runs with that as
# its working directory, so Hypothesis' ./.hypothesis lands there too): the full output, a JUnit
# report and a VCR cassette of every request. It is removed after a passing run and kept (its path
# printed) after a failing one. Exit status: 0 when every check passed, 1 on any failure or error,
# 2 when the test could not start.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
spec=$root/openapi.yaml

if [ $# -lt 1 ]; then
  echo "usage: $0 URL [--token TOKEN]" >&2
  exit 2
fi
url=${1%/}
shift
token=
if [ "${1:-}" = "--token" ]; then
  token=${2:-}
  [ -n "$token" ] || { echo "--token needs a value" >&2; exit 2; }
  shift 2
fi
[ $# -eq 0 ] || { echo "unknown argument: $1" >&2; exit 2; }

max_examples=${CONTRACT_MAX_EXAMPLES:-200}
namespaced_examples=${CONTRACT_NAMESPACED_EXAMPLES:-$(((max_examples + 3) / 4))}
[[ $max_examples =~ ^[1-9][0-9]*$ && $namespaced_examples =~ ^[1-9][0-9]*$ ]] ||
  { echo "contract: CONTRACT_MAX_EXAMPLES and CONTRACT_NAMESPACED_EXAMPLES are positive integers" >&2; exit 2; }
seed=${CONTRACT_SEED:-20261130}
# One worker: with two, hypothesis describes filter lambdas by parsing their source with `ast` from
# both threads at once, which CPython 3.11's parser does not survive ("AST constructor recursion
# depth mismatch", seen in a clean-clone CI run as an error in an operation that passed otherwise).
workers=${CONTRACT_WORKERS:-1}

# schemathesis 4 (the configuration uses its keys); 4.32.5 is the version this was written for.
st=(schemathesis)
if ! version=$(schemathesis --version 2>/dev/null) || [[ "$version" != *" 4."* ]]; then
  venv=${TMPDIR:-/tmp}/carma-contract-venv-4.32.5
  if [ ! -x "$venv/bin/schemathesis" ]; then
    echo "contract: installing schemathesis 4.32.5 into $venv" >&2
    { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5; } >&2 ||
      { echo "contract: cannot install schemathesis (pip install schemathesis==4.32.5)" >&2; exit 2; }
  fi
  st=("$venv/bin/schemathesis")
  version=$("${st[@]}" --version)
fi

if ! curl -sf -o /dev/null --max-time 5 "$url/healthz"; then
  echo "contract: no carmad answers at $url/healthz" >&2
  exit 2
fi
auth=()
[ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
if [ "$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$url/fragments/alpha")" != 200 ]; then
  echo "contract: warning: GET /fragments/alpha is not 200; was the server seeded with seed.sh?" >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/carma-contract.XXXXXX") || exit 2
# The configuration, with the example budget of the namespaced copies (see schemathesis.toml).
config=$work/schemathesis.toml
{
  cat "$here/schemathesis.toml"
  printf '\n[[operations]]\ninclude-path-regex = %s\ngeneration.max-examples = %d\n' \
    "'^/namespaces/\\{ns\\}/(fragments|query|export|import|topology)'" "$namespaced_examples"
} >"$config"
args=(
  run "$spec"
  --url "$url"
  --checks all
  --seed "$seed"
  --max-examples "$max_examples"
  --workers "$workers"
  --request-timeout 20
  --report junit,vcr
  --report-dir "$work/report"
  --no-color
)
[ -n "$token" ] && args+=(-H "Authorization: Bearer $token")

echo "contract: $version, $url, seed $seed, max-examples $max_examples ($namespaced_examples for the namespaced copies), workers $workers"
started=$(date +%s)
(
  cd "$work" &&
    CARMA_CONTRACT_DIR=$here "${st[@]}" --config-file "$config" "${args[@]}"
) >"$work/output.txt" 2>&1
status=$?
elapsed=$(($(date +%s) - started))

# Short summary: one line per phase, then schemathesis' own summary without the blocks that repeat
# it; on failure the failures and errors first (capped; the whole output stays in the work dir).
awk '
  /^=+ [A-Z]+ =+$/ { exit }
  /^ *[^ ]+ +(Examples|Coverage|Fuzzing|Stateful) \(/ { phase = $0; sub(/^ */, "", phase); next }
  phase != "" && /(passed|failed|skipped|errors?)/ { line = $0; sub(/^ */, "", line); print "  " phase ": " line; phase = "" }
' "$work/output.txt"
if [ $status -ne 0 ]; then
  awk '/^=+ (FAILURES|ERRORS) =+$/ { show = 1 } /^=+ (WARNINGS|SUMMARY) =+$/ { show = 0 } show' "$work/output.txt" | head -250
fi
awk '
  /^=+ SUMMARY =+$/ { show = 1; next }
  !show { next }
  /^(API Operations|Test Phases|Reports):/ { skip = 1; next }
  skip && /^$/ { skip = 0; next }
  skip || /^$/ { next }
  { print "  " $0 }
' "$work/output.txt"

# Operations passed and failed, from the JUnit report (one test case per operation).
counts=$(python3 - "$work/report" <<'PY' 2>/dev/null
import glob, sys, xml.etree.ElementTree as ET
passed = failed = 0
for path in glob.glob(sys.argv[1] + "/*.xml"):
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is None:
            passed += 1
print(passed, failed)
PY
) || counts=
read -r passed failed <<<"${counts:-0 0}"
if [ $status -eq 0 ] && [ "$failed" != 0 ]; then status=1; fi
if [ $status -eq 0 ] && [ "$passed" = 0 ]; then
  echo "contract: schemathesis reported no tested operation" >&2
  status=1
fi

echo "contract: ${elapsed}s, operations: $passed passed, $failed failed (schemathesis exit $status)"
if [ $status -ne 0 ] || [ "${CONTRACT_KEEP:-0}" = 1 ]; then
  echo "contract: output and reports kept in $work"
else
  rm -rf "$work"
fi
# The closing line test runners read.
echo "contract: $passed passed, $failed failed"
[ $status -eq 0 ] && exit 0 || exit 1
