#!/usr/bin/env bash
# Prepares a Docker Engine API for the host agent's docker runtime on a machine without Docker:
# Podman's compatible service on a unix socket, and a PostgreSQL image built locally from the
# host's own server binaries, one per major (no registry is needed or used). Idempotent: run it as often as you
# like; what is already there is kept. CI runs it before the tests; stop-podman.sh undoes the service.
#
#   PGS_PODMAN_RUN_DIR  where the socket, pid file, log and containers.conf go (default /run/pgs-podman)
#   PGS_PG_MAJOR        PostgreSQL majors to package, space-separated (default: every major under
#                       /usr/lib/postgresql and PGS_PG_VERSIONS_DIR, default /var/lib/pgs/postgres)
#
# Prints the socket path on its last line; point the agent (or the tests) at it with
# PGS_DOCKER_SOCKET=<path>.
set -euo pipefail

RUN_DIR=${PGS_PODMAN_RUN_DIR:-/run/pgs-podman}
SOCK="$RUN_DIR/podman.sock"
CONF="$RUN_DIR/containers.conf"
PID_FILE="$RUN_DIR/podman.pid"
LOG_FILE="$RUN_DIR/podman-service.log"
# Bump when the image's contents or entrypoint change, so an old image is rebuilt.
IMAGE_REVISION=5

say() { printf 'setup-podman: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (rootful podman serves the Docker API the agent uses)"

# 1. Packages: podman and runc from Debian. apt-get update only when the install needs it.
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
  say "installing podman and runc"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y podman runc >/dev/null; then
    apt-get update >/dev/null
    apt-get install -y podman runc >/dev/null || die "apt-get install podman runc failed"
  fi
fi

# 2. containers.conf: runc (crun is not packaged everywhere), ulimits postgres is happy with,
# cgroupfs (no systemd here) and file events (no journald).
mkdir -p "$RUN_DIR"
chmod 0755 "$RUN_DIR"
cat >"$CONF.tmp" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
mv "$CONF.tmp" "$CONF"
export CONTAINERS_CONF="$CONF"

# 3. The API service, in the background, with a pid file.
# Node is on every machine that runs the agent; curl may not be.
ping() {
  node -e 'const r = require("http").get({ socketPath: process.argv[1], path: "/_ping", timeout: 2000 }, (res) => process.exit(res.statusCode === 200 ? 0 : 1)); r.on("error", () => process.exit(1)); r.on("timeout", () => process.exit(1));' "$SOCK" 2>/dev/null
}
if ! ping; then
  if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    say "podman service $(cat "$PID_FILE") is not answering; restarting it"
    kill "$(cat "$PID_FILE")" || true
    sleep 1
  fi
  rm -f "$SOCK"
  say "starting podman system service on unix://$SOCK"
  CONTAINERS_CONF="$CONF" nohup podman system service --time=0 "unix://$SOCK" >>"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 150); do
    ping && break
    kill -0 "$(cat "$PID_FILE")" 2>/dev/null || die "podman service exited: $(tail -20 "$LOG_FILE")"
    sleep 0.2
  done
  ping || die "podman service did not answer within 30 s: $(tail -20 "$LOG_FILE")"
fi
chmod 0660 "$SOCK"

# 4. One image localhost/pgs-postgres:<major> per PostgreSQL major on this host, imported from a rootfs
# made of the host's own binaries: the distribution's (/usr/lib/postgresql/<major>, share files in
# /usr/share/postgresql/<major>) and those of setup-postgres-versions.sh (<dir>/<major>/{bin,lib,share},
# self-contained: their binaries find lib/ and share/ relative to themselves).
VERSIONS_DIR=${PGS_PG_VERSIONS_DIR:-/var/lib/pgs/postgres}
declare -A PREFIX=()
for d in /usr/lib/postgresql/*/ "$VERSIONS_DIR"/*/; do
  m=$(basename "$d")
  [[ $m =~ ^[0-9]+$ ]] && [ -x "$d/bin/postgres" ] && [ -z "${PREFIX[$m]:-}" ] && PREFIX[$m]=${d%/}
done
if [ -n "${PGS_PG_MAJOR:-}" ]; then MAJORS=$PGS_PG_MAJOR; else MAJORS=$(printf '%s\n' "${!PREFIX[@]}" | sort -n | tr '\n' ' '); fi
[ -n "${MAJORS// /}" ] || die "no PostgreSQL server under /usr/lib/postgresql or $VERSIONS_DIR; install postgresql or run setup-postgres-versions.sh"
PG_UID=$(id -u postgres) || die "no postgres OS user on this host"
PG_GID=$(id -g postgres)
# A file, keeping its path (symlinks resolved, so the rootfs needs no link targets).
put() { mkdir -p "$ROOTFS$(dirname "$1")"; cp -L "$1" "$ROOTFS$1"; }
# The shared libraries a binary or library needs, as ldd resolves them on this host.
libs_of() { ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'; }
ROOTFS=
trap '[ -z "$ROOTFS" ] || rm -rf "$ROOTFS"' EXIT

build_image() {
  local MAJOR=$1 IMAGE="localhost/pgs-postgres:$1" PG_PREFIX=${PREFIX[$1]:-}
  [ -n "$PG_PREFIX" ] || die "PostgreSQL $MAJOR is not installed here (no /usr/lib/postgresql/$MAJOR nor $VERSIONS_DIR/$MAJOR)"
  local PG_BIN="$PG_PREFIX/bin"
  [ "$(podman image inspect --format '{{ index .Config.Labels "pgs.image-revision" }}' "$IMAGE" 2>/dev/null)" = "$IMAGE_REVISION" ] && { IMAGES+=("$IMAGE"); return 0; }
  local SERVER_VERSION
  SERVER_VERSION=$("$PG_BIN/postgres" --version | sed -n 's/.*(PostgreSQL) \([0-9.]*\).*/\1/p')
  say "building $IMAGE from the host's PostgreSQL $SERVER_VERSION binaries in $PG_PREFIX"
  ROOTFS=$(mktemp -d /tmp/pgs-rootfs.XXXXXX)
  # Binaries of the entrypoint: a shell, and what it runs.
  local TOOLS="/bin/sh /bin/mkdir /bin/chown /bin/chmod /bin/rm /usr/bin/setpriv /bin/cat"
  mkdir -p "$ROOTFS$(dirname "$PG_PREFIX")"
  cp -a "$PG_PREFIX" "$ROOTFS$(dirname "$PG_PREFIX")/"
  if [ -d "/usr/share/postgresql/$MAJOR" ] && [ "$PG_PREFIX" = "/usr/lib/postgresql/$MAJOR" ]; then
    mkdir -p "$ROOTFS/usr/share/postgresql"
    cp -a "/usr/share/postgresql/$MAJOR" "$ROOTFS/usr/share/postgresql/"
  fi
  # Debian's PostgreSQL uses the system time zone database.
  if [ -d /usr/share/zoneinfo ]; then mkdir -p "$ROOTFS/usr/share"; cp -a /usr/share/zoneinfo "$ROOTFS/usr/share/"; fi
  for t in $TOOLS; do put "$t"; done
  {
    for f in "$PG_BIN"/* $(find "$PG_PREFIX/lib" -name '*.so*' -type f 2>/dev/null) $TOOLS; do libs_of "$f"; done
  } | sort -u | while read -r lib; do [ -n "$lib" ] && put "$lib"; done
  # The postgres OS user and group, with this host's ids.
  mkdir -p "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/var/run/postgresql" "$ROOTFS/var/lib/postgresql/data" "$ROOTFS/usr/local/bin"
  chmod 1777 "$ROOTFS/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\npostgres:x:%s:%s:PostgreSQL:/var/lib/postgresql:/bin/sh\n' "$PG_UID" "$PG_GID" >"$ROOTFS/etc/passwd"
  printf 'root:x:0:\npostgres:x:%s:\n' "$PG_GID" >"$ROOTFS/etc/group"
  chown "$PG_UID:$PG_GID" "$ROOTFS/var/lib/postgresql/data" "$ROOTFS/var/run/postgresql"
  chmod 0700 "$ROOTFS/var/lib/postgresql/data"
  cat >"$ROOTFS/usr/local/bin/pgs-entrypoint" <<EOF
#!/bin/sh
# pgs image entrypoint: initdb into the volume on first start, then exec postgres as the postgres user.
set -eu
PGDATA=/var/lib/postgresql/data/pgdata
SOCK=/var/run/postgresql
as_postgres() { setpriv --reuid=$PG_UID --regid=$PG_GID --clear-groups "\$@"; }
mkdir -p "\$PGDATA" "\$SOCK"
chown $PG_UID:$PG_GID /var/lib/postgresql/data "\$PGDATA" "\$SOCK"
chmod 0700 "\$PGDATA" "\$SOCK"
if [ ! -s "\$PGDATA/PG_VERSION" ]; then
  as_postgres initdb -D "\$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >/dev/null
  # The agent administers over the unix socket (a host directory only root and postgres can enter);
  # clients come through the published port, NATed, so their source address is not meaningful here:
  # SCRAM for every tenant role, never the superuser.
  cat >"\$PGDATA/pg_hba.conf" <<'HBA'
local   all   postgres   trust
host    all   postgres   0.0.0.0/0   reject
host    all   postgres   ::/0        reject
host    all   all        0.0.0.0/0   scram-sha-256
host    all   all        ::/0        scram-sha-256
HBA
  chown $PG_UID:$PG_GID "\$PGDATA/pg_hba.conf"
fi
# The volume belongs to this container alone: a postmaster.pid or socket lock here is a crash leftover.
rm -f "\$PGDATA/postmaster.pid" "\$SOCK"/.s.PGSQL.*
exec setpriv --reuid=$PG_UID --regid=$PG_GID --clear-groups postgres -D "\$PGDATA" -c listen_addresses='*' -c unix_socket_directories="\$SOCK" "\$@"
EOF
  chmod 0755 "$ROOTFS/usr/local/bin/pgs-entrypoint"
  tar -C "$ROOTFS" -cf - . | podman import \
    --change 'ENTRYPOINT ["/usr/local/bin/pgs-entrypoint"]' \
    --change "ENV PATH=$PG_BIN:/usr/bin:/bin" \
    --change 'ENV LANG=C' \
    --change 'EXPOSE 5432' \
    --change 'STOPSIGNAL SIGINT' \
    --change "LABEL pgs.image-revision=$IMAGE_REVISION" \
    --change "LABEL pgs.postgres-major=$MAJOR" \
    --change "LABEL pgs.postgres-version=$SERVER_VERSION" \
    - "$IMAGE" >/dev/null
  rm -rf "$ROOTFS"
  ROOTFS=
  [ "$(podman image inspect --format '{{ index .Config.Labels "pgs.image-revision" }}' "$IMAGE" 2>/dev/null)" = "$IMAGE_REVISION" ] || die "podman import did not produce $IMAGE"
  say "built $IMAGE"
  IMAGES+=("$IMAGE")
}

IMAGES=()
for m in $MAJORS; do build_image "$m"; done

say "ready: docker API at unix://$SOCK, images ${IMAGES[*]}"
echo "$SOCK"
