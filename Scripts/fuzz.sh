#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets of Fuzz/ with AddressSanitizer and
# runs each for FUZZ_SECONDS (default 60), one after another. Prints one line
# per target,
#     fuzz NAME: N runs, 0 crashes
# or the crash and the reproducer's path, and exits non-zero if any target
# crashed (Docs/fuzzing.md). Arguments, if any, name the targets to run
# (FuzzPNG FuzzPickle …); the default is all of them.
#
# Per input: 10 s (-timeout), 2 GB of RSS and 2 GB in one allocation
# (-rss_limit_mb, -malloc_limit_mb). The readers' own limits are all lower:
# the biggest legitimate allocation is a decoded 100-megapixel image (300 MB
# of RGB, plus its Array copy), so anything beyond 2 GB is a missing check,
# not a legitimate answer. Inputs are capped at -max_len bytes per target:
# big enough for every seed and a realistic small file of that kind.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
swift=${SWIFT:-swift}
build=Fuzz/.build
crashes=Fuzz/crashes

# target max_len
table="
FuzzJPEG 65536
FuzzPNG 65536
FuzzPickle 16384
FuzzPthZip 32768
FuzzMXNetParams 16384
FuzzSafeTensors 16384
FuzzRecordIO 8192
FuzzManifest 4096
FuzzLabelMap 4096
FuzzHyperparameters 4096
FuzzModelJSON 4096
FuzzMediaTypes 1024
FuzzTarGz 16384
"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    read -r -a targets <<< "$(awk 'NF { printf "%s ", $1 }' <<< "$table")"
fi

# The library and its C shims are instrumented too (coverage for libFuzzer,
# AddressSanitizer checks), not only the targets.
$swift build --package-path Fuzz -c release --scratch-path "$build" \
    -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address \
    2>&1 | grep -v "Cannot export local symbol '__asan" || { echo "fuzz: the build failed" >&2; exit 1; }
binaries=$($swift build --package-path Fuzz -c release --scratch-path "$build" --show-bin-path)

failed=0
total=0
for target in "${targets[@]}"; do
    max_len=$(awk -v t="$target" '$1 == t { print $2 }' <<< "$table")
    [ -n "$max_len" ] || { echo "fuzz: no target $target" >&2; exit 2; }
    corpus=$build/corpus/$target   # grows while fuzzing; git-ignored
    artifacts=$crashes/$target     # crash-*, timeout-*, oom-*, leak-*; git-ignored
    log=$build/logs/$target.log
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    status=0
    # The Swift runtime's own backtracer would race libFuzzer's crash report.
    SWIFT_BACKTRACE=enable=no "$binaries/$target" "$corpus" "Fuzz/Corpus/$target" \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 > "$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$runs" ] || runs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    runs=${runs:-0}
    total=$((total + runs))
    reproducer=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    if [ "$status" -eq 0 ] && [ -z "$reproducer" ]; then
        echo "fuzz $target: $runs runs, 0 crashes"
    else
        failed=$((failed + 1))
        kind=$(grep -m1 -o 'ERROR: [A-Za-z]*: [^ ]*\|==ERROR: libFuzzer: [a-z-]*\|Fatal error: .*\|Precondition failed: .*' "$log" || true)
        echo "fuzz $target: $runs runs, 1 crash: ${reproducer:-no reproducer written (exit status $status)}"
        echo "    ${kind:-see the log}; log: $log"
    fi
done
echo "fuzz: ${#targets[@]} targets, $total runs, $failed crashed"
[ "$failed" -eq 0 ]
