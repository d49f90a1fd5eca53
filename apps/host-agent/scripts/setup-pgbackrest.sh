#!/usr/bin/env bash
# Installs pgBackRest, the backup engine the host agent drives (WAL archiving, base backups, restores),
# from Debian's packages when it is missing. Every host that runs an agent needs it; CI runs it too.
# pgBackRest 2.45 (Debian 12) supports PostgreSQL up to 16.
set -euo pipefail
if command -v pgbackrest >/dev/null; then
  echo "pgbackrest: $(pgbackrest version)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends pgbackrest
echo "pgbackrest: $(pgbackrest version)"
