#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz) with Debian's clang under
# ASan+UBSan in build/fuzz and runs each for N seconds (default 600), one at
# a time, on a copy of its committed corpus (tests/fuzz/corpus/<harness> and
# the inputs of past findings, tests/fuzz/regressions/<harness>; new entries
# go to build/fuzz/corpus/<harness>), with its dictionary. Any crash,
# sanitizer report, broken invariant, leak, timeout or out-of-memory is a
# finding: its input goes to build/fuzz/artifacts/ and the script exits 1.
# One summary line per harness: executions, exec/s, coverage, findings.
#
#   scripts/fuzz.sh [--seconds N] [harness ...]   N = 0 runs the corpus only
#   scripts/fuzz.sh --remake-seeds                rewrites tests/fuzz/corpus
#
# docs/fuzzing.md says what each harness checks.
set -euo pipefail
cd "$(dirname "$0")/.."

all=(fuzz_cookie_header fuzz_codec_open fuzz_record fuzz_json fuzz_msgpack fuzz_store_uri
     fuzz_cookie_options)
usage() {
  echo "usage: scripts/fuzz.sh [--seconds N] [--remake-seeds] [harness ...]" >&2
  echo "harnesses: ${all[*]}" >&2
  exit 2
}

seconds=600
remake=0
chosen=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) [ $# -ge 2 ] || usage; seconds=$2; shift 2 ;;
    --seconds=*) seconds=${1#--seconds=}; shift ;;
    --remake-seeds) remake=1; shift ;;
    -*) usage ;;
    *) chosen+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] || usage
[ ${#chosen[@]} -gt 0 ] || chosen=("${all[@]}")
for h in "${chosen[@]}"; do
  [[ " ${all[*]} " == *" $h "* ]] || { echo "unknown harness '$h'" >&2; usage; }
done

# The longest input each harness is given.
max_len() {
  case "$1" in
    fuzz_cookie_header) echo 8192 ;;        # three sealed cookies and then some
    fuzz_store_uri | fuzz_cookie_options) echo 1024 ;;
    *) echo 4096 ;;                         # a Set-Cookie's worth of cookie, record or value
  esac
}

scripts/deps.sh

dir=build/fuzz
bin=$dir/tests/fuzz
mkdir -p "$dir"
echo "== $dir (clang, libFuzzer, ASan+UBSan)"
start=$SECONDS
if ! { CC=clang CXX=clang++ nice -n 10 cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
         -DSESSIONS_FUZZ=ON -DSESSIONS_BUILD_TESTS=OFF -DSESSIONS_BUILD_EXAMPLES=OFF \
         -DSESSIONS_BUILD_BENCH=OFF &&
       nice -n 10 cmake --build "$dir" -j2 --target fuzzers; } >"$dir/build.log" 2>&1; then
  tail -n 40 "$dir/build.log" >&2
  echo "fuzz: the build failed (all of it in $dir/build.log)" >&2
  exit 1
fi
echo "built in $((SECONDS - start)) s"

if [ "$remake" -eq 1 ]; then
  rm -rf tests/fuzz/corpus
  "$bin/make_seeds" tests/fuzz/corpus
  exit 0
fi

mkdir -p "$dir/artifacts" "$dir/logs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/bin/llvm-symbolizer-14 ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
fi
if [ "$seconds" -eq 0 ]; then length=(-runs=0); else length=(-max_total_time="$seconds"); fi

failed=()
for h in "${chosen[@]}"; do
  corpus=$dir/corpus/$h
  log=$dir/logs/$h.log
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/"$h"/* "$corpus"/
  # The inputs of past findings are replayed with the corpus.
  if [ -d tests/fuzz/regressions/"$h" ]; then cp tests/fuzz/regressions/"$h"/* "$corpus"/; fi
  dict=()
  [ -f tests/fuzz/"$h".dict ] && dict=(-dict=tests/fuzz/"$h".dict)
  set +e
  nice -n 10 "$bin/$h" "${length[@]}" -max_len="$(max_len "$h")" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/$h-" "${dict[@]}" "$corpus" >"$log" 2>&1
  rc=$?
  set -e

  # (A run that fails while loading its corpus prints no coverage line.)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1 || true)
  findings=()
  for a in $(sed -n 's/.*Test unit written to //p' "$log"); do
    case "$a" in
      */"$h"-slow-unit-*) ;;  # slower than 10 s, below the timeout: not a finding
      */"$h"-*) findings+=("${a##*/"$h"-}") ;;
    esac
  done
  if [ "$rc" -ne 0 ] && [ ${#findings[@]} -eq 0 ]; then findings+=("exit $rc, no artifact"); fi
  summary="none"
  if [ ${#findings[@]} -gt 0 ]; then
    summary="${findings[*]}"
    failed+=("$h")
  fi
  printf '%-20s %10s execs %7s exec/s  %-20s findings: %s\n' \
    "$h" "${execs:-?}" "${rate:-?}" "${cov:-cov: ?}" "$summary"
  if [ ${#findings[@]} -gt 0 ]; then
    # The report, from the first error line, without libFuzzer's own frames.
    # The input is run once more with the slow unwinder, which sees through
    # uninstrumented libraries (msgpack-c, libpq, ...) to the frames in src/.
    report=$log
    input=$dir/artifacts/$h-${findings[0]}
    if [ -f "$input" ]; then
      report=$dir/logs/$h.reproduced.log
      ASAN_OPTIONS=$ASAN_OPTIONS:fast_unwind_on_malloc=0 "$bin/$h" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=1024 "$input" >"$report" 2>&1 || true
      grep -q -E 'ERROR: |INVARIANT VIOLATED|runtime error:' "$report" || report=$log
    fi
    grep -n -m 1 -E 'ERROR: |INVARIANT VIOLATED|runtime error:|out-of-memory|Timeout|uncaught' "$report" |
      cut -d: -f1 | { read -r first || first=1; tail -n +"$first" "$report"; } |
      grep -v -E ' in (fuzzer::|__libc_start|_start |main )|^(INFO|Running|Executed|MS:|Base64:|stat::)' |
      head -n 30 | sed 's/^/    /'
    if [ -f "$input" ]; then
      echo "    (log: $log; reproduce: $bin/$h $input)"
    else
      echo "    (log: $log)"
    fi
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]} (inputs in $dir/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#chosen[@]} harnesses, no findings"
