#!/usr/bin/env bash
# `npm test`: builds every project, then runs the end-to-end suite from the start beside every other
# project's tests, those one project at a time. Left to itself Nx starts the projects most depended
# on first, which put the end-to-end suite (the longest, about 19 minutes in CI) last and made the
# whole run as long as the unit suites plus it; side by side it is about as long as the longer of the two.
# Exits non-zero when either side failed.
set -uo pipefail
cd "$(dirname "$0")/.."

npx nx run-many -t build || exit 1

npx nx run @pgs/e2e:test --outputStyle=stream &
e2e=$!
# Ctrl-C or a stopped CI stops the end-to-end side too, not only the side in the foreground.
trap 'kill "$e2e" 2>/dev/null' INT TERM
npx nx run-many -t test --exclude=@pgs/e2e --parallel=1 --outputStyle=stream
units_rc=$?
wait "$e2e"
e2e_rc=$?

echo "unit and integration projects: exit $units_rc; end-to-end: exit $e2e_rc"
[ "$units_rc" -eq 0 ] && [ "$e2e_rc" -eq 0 ]
