#!/usr/bin/env bash
# Model-checks the Raft Promela models exhaustively with spin and checks every verdict:
# each correct model must have NO violation, each deliberately broken variant MUST have the
# violation it was built to show (so the models demonstrably check something).
#
# usage: raft-spec/run.sh [--quick]
#   default  the bounds stated in README.md (about 70 s of CPU; minutes of wall time on a
#            loaded 2-core machine)
#   --quick  smaller bounds for the correct models (used by `cargo test`; about 20 s of CPU);
#            the broken variants run at the same bounds in both modes
# RAFT_SPEC_SHOW_TRAILS=1 also prints the counterexample of every broken variant (it is always
# printed for an unexpected violation).
# Exit status: 0 when every verdict is the expected one, 1 otherwise, 2 when spin or a C
# compiler is missing.
set -u

here="$(cd "$(dirname "$0")" && pwd)"
mode=full
if [ "${1:-}" = "--quick" ]; then
    mode=quick
fi
for tool in spin gcc; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skipped: $tool not found"
        exit 2
    fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/raft-spec.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Always: -DSAFETY (safety properties only), -DCOLLAPSE (lossless state compression),
# -DMEMLIM (give up, and fail, above 3 GiB). Per run: -O2 for the exhaustive runs, -O0 for
# the broken variants whose counterexample is found in a few thousand states (compiling
# pan.c with -O2 costs more than such a search), -DT_REVERSE (reverse transition order: the
# order of a depth-first search; it never changes what an exhaustive run covers) where it
# finds the counterexample sooner.
PAN_CFLAGS="-w -DSAFETY -DCOLLAPSE -DMEMLIM=3072"
EXHAUSTIVE="-O2"
QUICK_FIND="-O0"
PAN_DEPTH=1000000

runs=0
unexpected=0
summary=""

# check NAME MODEL EXPECTED PAN_FLAGS SPIN_DEFINES...
#   EXPECTED: "none", or an extended regex of the assertion names that may be violated
#   PAN_FLAGS: extra C compiler flags for pan
check() {
    local name="$1" model="$2" expected="$3" pan_flags="$4"
    shift 4
    runs=$((runs + 1))
    local dir="$work/$runs"
    mkdir -p "$dir"
    cp "$here/$model" "$dir/"
    local started ended seconds output verdict status cpu_seconds="-"
    started=$(date +%s.%N)
    if ! (cd "$dir" && spin -a "$@" "$model" >spin.log 2>&1 &&
          gcc $PAN_CFLAGS $pan_flags -o pan pan.c >gcc.log 2>&1); then
        verdict="did not build: $(head -c 300 "$dir"/spin.log "$dir"/gcc.log 2>/dev/null)"
        status=UNEXPECTED
    else
        # CPU seconds of the search alone (wall time depends on what else the machine runs)
        local TIMEFORMAT=%U
        { time (cd "$dir" && ./pan -m$PAN_DEPTH >pan.out 2>&1); } 2>"$dir/cpu"
        cpu_seconds=$(cat "$dir/cpu")
        output="$dir/pan.out"
        local errors states violated
        errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$output" | head -1)
        states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$output" | head -1)
        violated=$(sed -n 's/.*assertion violated \([a-z_]*\).*/\1/p' "$output" | head -1)
        if grep -q "max search depth too small" "$output"; then
            verdict="search depth $PAN_DEPTH too small: not exhaustive"
            status=UNEXPECTED
        elif grep -qi "out of memory\|memory limit" "$output"; then
            verdict="ran out of memory: not exhaustive"
            status=UNEXPECTED
        elif [ -z "$errors" ]; then
            verdict="no verdict from pan: $(tail -c 300 "$output")"
            status=UNEXPECTED
        elif [ "$expected" = none ]; then
            if [ "$errors" = 0 ]; then
                verdict="no violation in $states states (exhaustive)"
                status=ok
            else
                verdict="VIOLATION of ${violated:-?} where none was expected"
                status=UNEXPECTED
            fi
        else
            if [ "$errors" != 0 ] && printf '%s' "$violated" | grep -Eqx "$expected"; then
                verdict="found the expected violation: $violated (after $states states)"
                status=ok
            elif [ "$errors" != 0 ]; then
                verdict="found $violated, expected one of $expected"
                status=UNEXPECTED
            else
                verdict="MISSED: no violation in $states states, expected $expected"
                status=UNEXPECTED
            fi
        fi
    fi
    ended=$(date +%s.%N)
    seconds=$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.1f", b - a }')
    if [ "$status" != ok ]; then
        unexpected=$((unexpected + 1))
        if [ -f "$dir/pan.out" ]; then
            echo "---- pan output for $name ----"
            cat "$dir/pan.out"
            echo "----"
        fi
    fi
    # the counterexample, step by step (the models print "MSC:" lines in replay only)
    if [ -f "$dir/$model.trail" ] && { [ "$status" != ok ] || [ -n "${RAFT_SPEC_SHOW_TRAILS:-}" ]; }; then
        echo "---- counterexample for $name ----"
        (cd "$dir" && spin -t "$@" "$model" 2>&1 | grep -E "MSC:|assertion" | sed 's/^ *MSC: /  /')
        echo "----"
    fi
    local line
    line=$(printf '%-10s %-42s %6ss %6ss  %s' "$status" "$name" "$seconds" "$cpu_seconds" \
        "$verdict")
    echo "$line"
    summary="$summary$line"$'\n'
}

if [ "$mode" = full ]; then
    election_terms=5; log_terms=4; crash_terms=3
else
    election_terms=4; log_terms=3; crash_terms=2
    # the quick searches are small: compiling pan.c with -O2 would cost more than it saves
    EXHAUSTIVE="-O0"
fi
echo "columns: verdict, run, wall seconds (spin + gcc + pan), CPU seconds of pan, outcome"
echo "raft-spec: $mode bounds (election terms <= $election_terms, log terms <= $log_terms," \
     "log terms with crashes <= $crash_terms, logs <= 2 entries, 3 servers)"

check "election: election safety" election.pml none "$EXHAUSTIVE" -DMAXTERM=$election_terms
check "election: BUG_VOTE_TWICE" election.pml election_safety "$QUICK_FIND" -DBUG_VOTE_TWICE
check "election: BUG_REPLY_BEFORE_PERSIST" election.pml election_safety "$QUICK_FIND" \
    -DBUG_REPLY_BEFORE_PERSIST
check "log: matching, completeness, SM safety" log.pml none "$EXHAUSTIVE" -DMAXTERM=$log_terms
check "log: BUG_COMMIT_OLD_TERM (Figure 8)" log.pml "leader_completeness|state_machine_safety" \
    "$EXHAUSTIVE -DT_REVERSE" -DBUG_COMMIT_OLD_TERM -DMAXTERM=4
check "log: BUG_NO_CONSISTENCY_CHECK" log.pml log_matching "$QUICK_FIND" \
    -DBUG_NO_CONSISTENCY_CHECK
check "log: BUG_VOTE_WITHOUT_LOG_CHECK" log.pml "leader_completeness|state_machine_safety" \
    "$QUICK_FIND" -DBUG_VOTE_WITHOUT_LOG_CHECK
check "log: BUG_TRUNCATE_ON_STALE_APPEND" log.pml "leader_completeness|state_machine_safety" \
    "$QUICK_FIND" -DBUG_TRUNCATE_ON_STALE_APPEND
check "log+crash: persistence before acking" log.pml none "$EXHAUSTIVE" \
    -DCRASH -DMAXTERM=$crash_terms
check "log+crash: BUG_ACK_BEFORE_PERSIST" log.pml "leader_completeness|state_machine_safety" \
    "$QUICK_FIND" -DCRASH -DBUG_ACK_BEFORE_PERSIST -DMAXTERM=2
check "log+crash: BUG_LEADER_COUNTS_UNPERSISTED" log.pml \
    "leader_completeness|state_machine_safety" "$QUICK_FIND" -DCRASH \
    -DBUG_LEADER_COUNTS_UNPERSISTED -DMAXTERM=2

echo
echo "summary: $runs runs, $((runs - unexpected)) as expected, $unexpected unexpected"
if [ "$unexpected" != 0 ]; then
    exit 1
fi
