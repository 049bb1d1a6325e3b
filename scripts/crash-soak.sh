#!/usr/bin/env bash
# A long crash soak: 200 SIGKILLs (or $1) at seeded random moments of runs
# with chains, loops, parallel branches, maps, fallbacks and hitl pauses, each
# followed by `caudal resume` (answering the pauses); checks that no finished
# step runs again, a step in flight at a kill runs at most once more, no
# answered pause is asked again, and every run ends with the output of an
# uninterrupted one. Needs a build (scripts/test.sh).
#   scripts/crash-soak.sh [KILLS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
CAUDAL_CRASH_KILLS="${1:-200}" CAUDAL_CRASH_SEED="${2:-$RANDOM}" \
  build/tests/caudal_crash --gtest_brief=0
