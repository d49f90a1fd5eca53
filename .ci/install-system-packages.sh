#!/usr/bin/env bash
# Installs the Debian packages the tests need, only when missing: PostgreSQL server binaries and
# clients (postgres, initdb, psql, pgbench) and openssl (test certificates). Podman and pgBackRest are
# handled by the agent's own scripts (apps/host-agent/scripts/setup-*.sh). Podman is handled by
# apps/host-agent/scripts/setup-podman.sh. Chromium (the coordinator's dashboard test) comes from
# apps/coordinator/scripts/setup-chromium.sh. Extra PostgreSQL majors come from
# apps/host-agent/scripts/setup-postgres-versions.sh.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null || need+=(postgresql-client)
command -v pgbench >/dev/null || need+=(postgresql-contrib)
command -v openssl >/dev/null || need+=(openssl)
command -v ip >/dev/null || need+=(iproute2)
id postgres >/dev/null 2>&1 || need+=(postgresql-common)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
  # Debian's package starts a cluster of its own; the tests start their own servers.
  systemctl stop postgresql 2>/dev/null || service postgresql stop 2>/dev/null || true
else
  echo "all present"
fi

bash "$(dirname "$0")/../apps/host-agent/scripts/setup-pgbackrest.sh"
# PostgreSQL 16, 17 and 18 server binaries from the npm registry (the versions e2e scenario; the
# podman setup then builds one instance image per major).
bash "$(dirname "$0")/../apps/host-agent/scripts/setup-postgres-versions.sh"
bash "$(dirname "$0")/../apps/coordinator/scripts/setup-chromium.sh"
