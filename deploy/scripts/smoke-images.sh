#!/usr/bin/env bash
# Runs the images from build-images.sh as a one-machine fleet on loopback and checks it end to end:
# a coordinator, an agent (process runtime inside its container) and a router, each a container with
# host networking on 127.0.88.1, joined with tokens from the pgsctl image; a tenant is created and
# queried through the router with psql. Removes its containers and volumes at the end (also on failure).
#
#   PGS_SMOKE_ADDRESS  loopback address to use (default 127.0.88.1)
set -euo pipefail

say() { printf 'smoke-images: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VERSION=$(node -p 'require(process.argv[1]).version' "$ROOT/package.json")
ADDR=${PGS_SMOKE_ADDRESS:-127.0.88.1}
TAG="pgs-smoke-$$"
GRPC="$ADDR:7400"
PASSWORD=smoke-secret-42

if [ -z "${CONTAINERS_CONF:-}" ] && [ -f /run/pgs-podman/containers.conf ]; then export CONTAINERS_CONF=/run/pgs-podman/containers.conf; fi

cleanup() {
  podman rm -f -t 20 "$TAG-router" "$TAG-agent" "$TAG-coordinator" >/dev/null 2>&1 || true
  # The agent leaves its instances running by design; they were in its container and went with it.
  podman volume rm -f "$TAG-coordinator" "$TAG-agent" "$TAG-router" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Polls a command (given as arguments) for up to $1 seconds.
until_ok() {
  local seconds=$1; shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

pgsctl() {
  podman run --rm -i --network host -v "$TAG-coordinator:/var/lib/pgs/coordinator:ro" \
    -e PGS_CA=/var/lib/pgs/coordinator/ca.pem -e PGS_TOKEN_FILE=/var/lib/pgs/coordinator/admin.token \
    "localhost/pgsctl:$VERSION" -c "$GRPC" "$@"
}

for v in coordinator agent router; do podman volume create "$TAG-$v" >/dev/null; done
say "coordinator"
podman run -d --name "$TAG-coordinator" --network host -v "$TAG-coordinator:/var/lib/pgs/coordinator" \
  -e PGS_GRPC_LISTEN="$GRPC" -e PGS_HTTP_LISTEN="$ADDR:7480" "localhost/pgs-coordinator:$VERSION" >/dev/null
# pgsctl runs as the image's pgs user too, so it can read the admin token in the shared volume.
until_ok 60 pgsctl status || die "coordinator did not answer: $(podman logs --tail 20 "$TAG-coordinator" 2>&1)"

say "agent h1 (joins with a token)"
HOST_TOKEN=$(pgsctl -o json token create --kind host --id h1 --ttl 10m | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).token))')
# Root, as on a host; privileged for the cgroup limits and the postgres OS user's setuid.
podman run -d --name "$TAG-agent" --network host --privileged -v "$TAG-agent:/var/lib/pgs/agent" \
  -e PGS_HOST_ID=h1 -e PGS_ADDRESS="$ADDR" -e PGS_COORDINATOR="$GRPC" -e PGS_JOIN_TOKEN="$HOST_TOKEN" \
  -e PGS_PORT_RANGE=20880-20889 -e PGS_SPARE_CLONES=1 -e PGS_CPU=2 -e PGS_MEMORY=4Gi -e PGS_DISK=20Gi \
  "localhost/pgs-agent:$VERSION" >/dev/null
host_ready() { pgsctl -o json host list | grep -q '"state": "READY"'; }
until_ok 120 host_ready || die "agent not READY: $(podman logs --tail 20 "$TAG-agent" 2>&1)"

say "router r1 (joins with a token)"
ROUTER_TOKEN=$(pgsctl -o json token create --kind router --id r1 --ttl 10m | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).token))')
podman run -d --name "$TAG-router" --network host -v "$TAG-router:/var/lib/pgs/router" \
  -e PGS_ROUTER_ID=r1 -e PGS_LISTEN="$ADDR:5432" -e PGS_COORDINATOR="$GRPC" -e PGS_JOIN_TOKEN="$ROUTER_TOKEN" \
  -e PGS_CANCEL_LISTEN="$ADDR:6432" "localhost/pgs-router:$VERSION" >/dev/null
router_connected() { pgsctl -o json route list | grep -q '"routerId": "r1"'; }
until_ok 60 router_connected || die "router not connected: $(podman logs --tail 20 "$TAG-router" 2>&1)"

say "tenant smoke through the router"
echo "$PASSWORD" | pgsctl tenant create smoke --access enabled --password-stdin --wait --timeout 120s >/dev/null
query() { PGPASSWORD=$PASSWORD psql -X -w -At -h "$ADDR" -p 5432 -U smoke.smoke -d smoke -c "select 'served by ' || current_setting('server_version')"; }
until_ok 30 query || die "no answer through the router: $(query 2>&1 || true)"
query
say "ok: coordinator, agent and router images serve a tenant"
