#!/usr/bin/env bash
# The long fuzz run (not part of the suite): every target in test/fuzz with 10^6 inputs each
# unless PLEXD_FUZZ_ITERATIONS says otherwise; PLEXD_FUZZ_SEED picks another seed. Each target
# prints its figures (inputs, drops by reason, heap) so the run can be quoted.
set -euo pipefail
cd "$(dirname "$0")/.."
export PLEXD_FUZZ_ITERATIONS="${PLEXD_FUZZ_ITERATIONS:-1000000}"
exec npx vitest run --project unit test/fuzz "$@"
