#!/usr/bin/env bash
# Proves lint enforces the architecture: each deliberately wrong import below must fail lint.
set -uo pipefail
cd "$(dirname "$0")/.."
export NX_DAEMON=false
check() { # file content expected-rule
  local file=$1 content=$2 rule=$3
  printf '%s\n' "$content" > "$file"
  local project; project=$(cut -d/ -f1-2 <<<"$file") # libs/<name> or apps/<name>: lint runs from there
  out=$(cd "$project" && npx eslint "${file#"$project"/}" 2>&1)
  rc=$?
  rm -f "$file"
  if [ $rc -eq 0 ] || ! grep -q "$rule" <<<"$out"; then echo "NOT CAUGHT: $file ($rule)"; echo "$out"; return 1; fi
  echo "caught: $file -> $rule"
}
ok=0
check libs/tenancy/src/zz-bad-io.ts "import net from 'node:net'; export const x = net;" 'no-restricted-imports' || ok=1
check libs/wire-protocol/src/zz-bad-clock.ts "export const now = () => Date.now();" 'no-restricted-properties' || ok=1
check libs/tenancy/src/zz-bad-lib.ts "import { addService } from '@pgs/rpc'; export const x = addService;" '@nx/enforce-module-boundaries' || ok=1
check libs/rpc/src/zz-bad-app.ts "import * as c from '@pgs/coordinator'; export const x = c;" 'Apps are never imported' || ok=1
check apps/coordinator/src/store/zz-bad-layer.ts "import { AgentHub } from '../transport/agent-hub.js'; export type X = AgentHub;" 'never import services, transport' || ok=1
exit $ok
