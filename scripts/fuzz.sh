#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (swiftc -sanitize=fuzzer,address), one process, one core.
#
#   scripts/fuzz.sh TARGET SECONDS     e.g. scripts/fuzz.sh json 600
#   scripts/fuzz.sh list               the targets
#
# Builds the target from the module sources (not through SwiftPM: libFuzzer needs its own main and
# coverage instrumentation), runs it single-process for SECONDS on the corpus Fuzz/corpus/TARGET
# (seeds are committed as seed-*; what libFuzzer adds there is git-ignored), writes what it finds to
# Fuzz/findings/TARGET, and prints the executions and the findings. Exit status 1 if anything was found.
#
# A finding (crash-*, timeout-*, oom-*, leak-*) is replayed with
#   Fuzz/build/TARGET/fuzzer Fuzz/findings/TARGET/crash-…
# and, once understood, becomes a regression unit test in the module's test target.
#
# Targets live in Fuzz/TARGET/:
#   Harness.swift   defines `@_cdecl("LLVMFuzzerTestOneInput") func …(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt`
#                   and imports the modules it exercises; it must crash (fatalError) on a wrong answer,
#                   not only on a fault.
#   modules         one line per module to compile, in dependency order: a module name, then its
#                   source files as globs relative to the repository root (# starts a comment).
#   flags           optional: more swiftc arguments for every compile and the link, one per line,
#                   e.g. `-I` and `Sources/CISAL` and `-lisal` for a module that imports CISAL.
# Seeds go in Fuzz/corpus/TARGET/seed-NAME.
#
# Adding the storage engine's segment record decoder (the third target, for the engineer who owns it):
#   mkdir Fuzz/segment-record
#   Fuzz/segment-record/modules:  the store's C shims do not compile here, so list the decoder's own
#                                 files, e.g. `SegmentRecord Sources/FragmentStore/Internals/CRC32C.swift
#                                 Sources/FragmentStore/Internals/SegmentRecord.swift` (and CarmaJSON first
#                                 if the record body is parsed)
#   Fuzz/segment-record/flags:    -I / Sources/CISAL / -lisal (one per line), since CRC32C calls ISA-L
#   Fuzz/segment-record/Harness.swift: decode the bytes as a record; a record that decodes must
#                                 encode back to the same bytes, and a flipped byte must fail its CRC.
#   Fuzz/corpus/segment-record/seed-*: a few valid records (put and delete) cut from a real segment.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

targets() { for dir in Fuzz/*/; do [[ -f "$dir/Harness.swift" ]] && basename "$dir"; done; }

if [[ $# -eq 1 && $1 == list ]]; then targets; exit 0; fi
if [[ $# -ne 2 || ! $2 =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/fuzz.sh TARGET SECONDS   (targets: $(targets | tr '\n' ' '))" >&2
    exit 2
fi
target=$1
seconds=$2
dir="Fuzz/$target"
[[ -f $dir/Harness.swift && -f $dir/modules ]] || { echo "no target '$target' (Fuzz/$target/Harness.swift and modules)" >&2; exit 2; }

# libFuzzer's runtime: Swift toolchains for Linux ship it in their clang resource directory (6.3.1
# does), and -sanitize=fuzzer links it from there. Where one does not, Debian's compiler-rt package
# provides it, linked by path, with the coverage instrumentation requested explicitly. (That second
# path is untested: the toolchain here has its own runtime.)
swiftc_bin="$(command -v swiftc)"
resource="$(dirname "$(readlink -f "$swiftc_bin")")/../lib/swift/clang/lib/linux"
sanitize=(-sanitize=fuzzer,address)
link=()
if ! ls "$resource"/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
    runtime=$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null | tail -1 || true)
    if [[ -z $runtime ]]; then
        echo "installing libFuzzer's runtime (libclang-rt-14-dev)" >&2
        apt-get install -y --no-install-recommends libclang-rt-14-dev >/dev/null
        runtime=$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a | tail -1)
    fi
    sanitize=(-sanitize=address -sanitize-coverage=edge,trace-cmp,indirect-calls)
    link=(-Xlinker "$runtime" -lstdc++)
fi

build="Fuzz/build/$target"
corpus="Fuzz/corpus/$target"
findings="Fuzz/findings/$target"
mkdir -p "$build" "$corpus" "$findings"

extra=()
if [[ -f $dir/flags ]]; then
    while IFS= read -r line; do [[ -n $line && $line != \#* ]] && extra+=("$line"); done < "$dir/flags"
fi
# -O keeps Swift's bounds and overflow checks (only -Ounchecked drops them); -g for readable stacks.
common=(-O -g "${sanitize[@]}" -parse-as-library -I "$build" "${extra[@]}")

objects=()
while read -r module globs; do
    [[ -z $module || $module == \#* ]] && continue
    # shellcheck disable=SC2086  # the globs are meant to expand
    files=($globs)
    echo "compiling $module (${#files[@]} files)" >&2
    swiftc "${common[@]}" -wmo -module-name "$module" -emit-module -emit-module-path "$build/$module.swiftmodule" \
        -c "${files[@]}" -o "$build/$module.o"
    objects+=("$build/$module.o")
done < "$dir/modules"
echo "linking the fuzzer" >&2
# gold warns about every ASan helper it cannot export; the warnings say nothing about the target.
swiftc "${common[@]}" -module-name "Fuzz_${target//-/_}" "$dir/Harness.swift" "${objects[@]}" "${link[@]}" -o "$build/fuzzer" \
    2> >(grep -v "Cannot export local symbol" >&2)

log="$build/run.log"
echo "fuzzing $target for $seconds s (log: $log)" >&2
set +e
"$build/fuzzer" "$corpus" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -artifact_prefix="$findings/" >"$log" 2>&1
status=$?
set -e

executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
found=$(find "$findings" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' -o -name 'slow-unit-*' \) | wc -l)
units=$(find "$corpus" -type f | wc -l)
coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
echo "target=$target seconds=$seconds executions=${executions:-?} coverage_edges=${coverage:-?} corpus_units=$units findings=$found libfuzzer_status=$status"
if [[ $found -gt 0 ]]; then
    find "$findings" -type f | sed 's/^/  /'
    exit 1
fi
