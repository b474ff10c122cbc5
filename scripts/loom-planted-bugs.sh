#!/usr/bin/env bash
# The bar for keeping the hand-written ring: each bug planted here must make
# the loom tests (src/sink/loom_tests.rs) fail. For each mutation, the crate
# is copied to a temporary directory, the mutation is applied there with sed
# (the work tree is never touched), the loom tests are run, and the run must
# FAIL. The script exits non-zero if a planted bug goes unnoticed, or if a
# mutation no longer applies (the code it patches has changed).
#
# Not part of scripts/test.sh: it rebuilds the crate once per mutation (a few
# minutes in all). Run it from anywhere:
#
#   scripts/loom-planted-bugs.sh            # every mutation
#   scripts/loom-planted-bugs.sh NAME...    # only those
#
# It builds in target/loom-planted, never in the test step's target/loom: the
# copies are the same package with the same file times, so a mutated build
# there would look up to date to the next real run. The first run copies
# target/loom, if it is there, so the dependencies are not built again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# Both overridable, for a work tree that shares another's target directory.
target="${LOOM_PLANTED_TARGET:-$root/target/loom-planted}"
loom_target="${LOOM_TARGET:-$root/target/loom}"
if [[ ! -d $target && -d $loom_target ]]; then
  cp -a "$loom_target" "$target"
fi
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export RUSTFLAGS="--cfg otlp_sink_loom"

# name # file # sed expression # expected outcome of the loom run
#   fail: a real bug, which the tests must catch
#   limit-fail: not a bug: the loom build without its stand-in for SeqCst
#     (see src/sink/loom.rs), which loom then wrongly reports; shows why the
#     stand-in is there
#   blind-pass: a real bug that loom cannot see because of that stand-in:
#     recorded so that nobody takes the SeqCst orderings as checked
mutations=(
  'stamp-release-relaxed#src/sink/ring.rs#s/stamp\.store(self\.lap + 1, Ordering::Release)/stamp.store(self.lap + 1, Ordering::Relaxed)/#fail'
  'pop-acquire-relaxed#src/sink/ring.rs#s/if slot\.stamp\.load(Ordering::Acquire) == lap + 1/if slot.stamp.load(Ordering::Relaxed) == lap + 1/#fail'
  'free-release-relaxed#src/sink/ring.rs#s/stamp\.store(lap + ring\.one_lap, Ordering::Release)/stamp.store(lap + ring.one_lap, Ordering::Relaxed)/#fail'
  'claim-acquire-relaxed#src/sink/ring.rs#s/let stamp = slot\.stamp\.load(Ordering::Acquire);/let stamp = slot.stamp.load(Ordering::Relaxed);/#fail'
  'claim-not-atomic#src/sink/ring.rs#s/match self\.tail\.0\.compare_exchange_weak(tail, next, Ordering::SeqCst, Ordering::Relaxed) {/match { self.tail.0.store(next, Ordering::SeqCst); Ok::<u64, u64>(tail) } {/#fail'
  'busy-reported-empty#src/sink/ring.rs#s/^            Pop::Busy$/            Pop::Empty/#fail'
  'drop-without-close#src/sink/ring.rs#/fn drop(&mut self) {/{n;s/^        self\.ring\.close();$/        \/\/ planted: no close/}#fail'
  'wake-recheck-removed#src/sink/wake.rs#s/if (0\.\.wakes\.len())\.any(|k| claimed(k) > wake_at(k)) || stop() {/if stop() {/#fail'
  'shard-recheck-first-only#src/sink/wake.rs#s/if (0\.\.wakes\.len())\.any(|k| claimed(k) > wake_at(k)) || stop() {/if (0..1).any(|k| claimed(k) > wake_at(k)) || stop() {/#fail'
  'shard-announce-first-only#src/sink/wake.rs#s/for (k, wake) in wakes\.iter()\.enumerate() {/for (k, wake) in wakes.iter().enumerate().take(1) {/#fail'
  'shard-shares-too-large#src/sink/wake.rs#s/let share = 1 + rest\.saturating_sub(1) \* taken_here\.min(batched as u64) \/ batched as u64;/let share = rest.max(taken_here * 0 + 1);/#fail'
  'shard-busy-reported-empty#src/sink/shards.rs#s/Pop::Busy => busy = true,/Pop::Busy => {}/#fail'
  'wake-off-by-one#src/sink/wake.rs#s/position >= self\.0\.load(Ordering::SeqCst)/position > self.0.load(Ordering::SeqCst)/#fail'
  'no-seqcst-stand-in#src/sink/loom.rs#s/::loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);/let _ = std::sync::atomic::Ordering::SeqCst;/#limit-fail'
  'wake-load-acquire#src/sink/wake.rs#s/position >= self\.0\.load(Ordering::SeqCst)/position >= self.0.load(Ordering::Acquire)/#blind-pass'
)

selected=("$@")
tmp="$(mktemp -d -t otlp-sink-loom-planted.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
status=0
summary=()

for entry in "${mutations[@]}"; do
  IFS='#' read -r name file expr expect <<<"$entry"
  if ((${#selected[@]})) && [[ ! " ${selected[*]} " == *" $name "* ]]; then
    continue
  fi
  copy="$tmp/$name"
  mkdir -p "$copy"
  # The crate as it is in the work tree, committed or not, without target/.
  (cd "$root" && git ls-files -z --cached --others --exclude-standard | grep -zv '^target/' |
    xargs -0 tar -cf -) | tar -xf - -C "$copy"
  sed -i -e "$expr" "$copy/$file"
  if cmp -s "$root/$file" "$copy/$file"; then
    echo "!! $name: the mutation did not apply to $file (has the code changed?)"
    status=1
    summary+=("$name: DID NOT APPLY")
    continue
  fi
  printf '\n==> %s (%s): %s\n' "$name" "$expect" "$(diff "$root/$file" "$copy/$file" | grep '^>' | head -1 | sed 's/^> *//')"
  started=$SECONDS
  if ! (cd "$copy" && cargo test --release --lib --no-default-features --target-dir "$target" --no-run) \
    >"$tmp/$name.build" 2>&1; then
    echo "!! $name: the mutated crate does not build:"
    grep -E '^error' -A5 "$tmp/$name.build" | head -20
    status=1
    summary+=("$name: BUILD FAILED")
    continue
  fi
  bin="$(sed -n 's/^ *Executable unittests src\/lib.rs (\(.*\))$/\1/p' "$tmp/$name.build" | tail -1)"
  [[ $bin == /* ]] || bin="$copy/$bin"
  # One process per test: a loom failure inside a drop can abort the whole
  # process (a panic while panicking), which would hide the tests after it.
  failed=()
  for test in $("$bin" --list sink::loom_tests 2>/dev/null | sed -n 's/: test$//p'); do
    log="$tmp/$name.$test.log"
    if ! ("$bin" --exact "$test" --test-threads 1 >"$log" 2>&1) 2>/dev/null; then
      failed+=("${test#sink::loom_tests::}")
      # loom's report: the panic message, on the line after "panicked at".
      msg="$(grep -A1 -m1 'panicked at' "$log" | tail -1 | cut -c1-200)"
      grep -q 'SIGABRT\|panic in a destructor during cleanup\|panicked while processing panic' "$log" && msg="$msg (then aborted)"
      echo "   ${test#sink::loom_tests::}: ${msg:-no message}"
    fi
  done
  took=$((SECONDS - started))
  outcome=pass
  ((${#failed[@]})) && outcome=fail
  case "$expect:$outcome" in
    fail:fail) verdict="failed, as it must" ;;
    limit-fail:fail) verdict="failed: loom's false alarm without the stand-in, as expected" ;;
    blind-pass:pass) verdict="passed: a known blind spot" ;;
    *) verdict="UNEXPECTED: the loom tests ${outcome}ed"; status=1 ;;
  esac
  echo "   -> $verdict (${took}s with the build); failing tests: ${failed[*]:-none}"
  summary+=("$name: $verdict; failing: ${failed[*]:-none}")
done

printf '\n==> summary\n'
printf '%s\n' "${summary[@]}"
exit $status
