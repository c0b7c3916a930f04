#!/bin/sh
# Runs one libFuzzer target for $FUZZ_SECONDS seconds (default 5) over a scratch copy of its seed corpus, and
# prints one summary line (also appended to <work dir>/summary.txt, which make fuzz shows): runs, executions per
# second, corpus size. Called by the CTest test fuzz.<name> (see
# fuzz/CMakeLists.txt), which `make test` (regressions, a few seconds) and `make fuzz` (FUZZ_SECONDS=N) run.
#   run_fuzzer.sh <binary> <name> <seed corpus dir> <work dir> <dict or ""> [libFuzzer flags...]
# The scratch corpus <work dir>/corpus/<name>/ keeps what earlier runs found (seeds are copied in, never written);
# a crashing input is saved as <work dir>/artifacts/<name>/crash-<sha1> and the run fails with libFuzzer's report.
set -eu
binary=$1 name=$2 seeds=$3 work=$4 dict=$5
shift 5
seconds=${FUZZ_SECONDS:-5}
corpus=$work/corpus/$name
artifacts=$work/artifacts/$name
log=$work/logs/$name.log
mkdir -p "$corpus" "$artifacts" "$work/logs"
cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
# ASan's detection of stack use after return (on by default since LLVM 15) collects its fake stack on every thrown
# exception; the parsers under test throw on most malformed inputs, which made that collection 65% of the time
# (address: 2.4k -> 8.1k exec/s without it). Coroutine frames live on the heap, where ASan still watches them.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_stack_use_after_return=0}"
set -- -max_total_time="$seconds" -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" "$@"
[ -n "$dict" ] && set -- -dict="$dict" "$@"
status=0
"$binary" "$@" "$corpus" >"$log" 2>&1 || status=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
units=$(ls "$corpus" | wc -l)
if [ "$status" -ne 0 ]; then
  tail -n 60 "$log"
  echo "fuzz.$name: FAILED (exit $status) after ${runs:-?} runs; the input is under $artifacts/, the log in $log" |
    tee -a "$work/summary.txt"
  exit "$status"
fi
echo "fuzz.$name: ${runs:-?} runs in ${seconds} s, ${speed:-?} exec/s, 0 crashes, corpus $units inputs" |
  tee -a "$work/summary.txt"
