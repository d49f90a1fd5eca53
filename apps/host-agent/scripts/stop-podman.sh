#!/usr/bin/env bash
# Stops the podman API service setup-podman.sh started (by its pid file) and removes the containers
# and volumes the pgs docker runtime made (label pgs.tenant). The image is kept for the next run.
set -uo pipefail

RUN_DIR=${PGS_PODMAN_RUN_DIR:-/run/pgs-podman}
PID_FILE="$RUN_DIR/podman.pid"
export CONTAINERS_CONF="$RUN_DIR/containers.conf"

if command -v podman >/dev/null 2>&1; then
  for c in $(podman ps -aq --filter label=pgs.tenant 2>/dev/null); do podman rm -f -t 5 "$c" >/dev/null 2>&1 || true; done
  for v in $(podman volume ls -q --filter label=pgs.tenant 2>/dev/null); do podman volume rm -f "$v" >/dev/null 2>&1 || true; done
fi
if [ -f "$PID_FILE" ]; then
  pid=$(cat "$PID_FILE")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$PID_FILE" "$RUN_DIR/podman.sock"
fi
echo "stop-podman: done" >&2
