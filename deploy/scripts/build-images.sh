#!/usr/bin/env bash
# Builds one OCI image per pgs component with Podman, from the release that `npm run package` made,
# without pulling anything: as apps/host-agent/scripts/setup-podman.sh does for PostgreSQL, each root
# file system is assembled from this machine's own files (the Node.js binary and the shared libraries
# ldd names for it) plus the component's part of the release, and imported with `podman import`.
#
#   localhost/pgs-coordinator:<version>  ENTRYPOINT pgs-coordinator; data in the volume /var/lib/pgs/coordinator
#   localhost/pgs-router:<version>       ENTRYPOINT pgs-router; route cache and identity in /var/lib/pgs/router
#   localhost/pgs-agent:<version>        ENTRYPOINT pgs-agent; data root /var/lib/pgs/agent; also holds this
#                                        machine's PostgreSQL server binaries for --runtime process
#   localhost/pgsctl:<version>           ENTRYPOINT pgsctl
#
# Options come from PGS_* variables (podman run --env-file /etc/pgs/router.env), as with the units.
# The coordinator and router images run as the unprivileged user pgs (uid 990); the agent as root.
#
#   PGS_IMAGE_COMPONENTS  which to build (default: "coordinator router agent pgsctl")
#   PGS_PG_MAJOR          PostgreSQL major for the agent image (default: the newest under /usr/lib/postgresql)
#   PGS_PG_VERSIONS_DIR   extra majors to add to the agent image, from setup-postgres-versions.sh
#                         (default /var/lib/pgs/postgres, skipped when absent)
#
# Prints the image names, one a line.
set -euo pipefail

say() { printf 'build-images: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VERSION=$(node -p 'require(process.argv[1]).version' "$ROOT/package.json")
PLATFORM="$(node -p 'process.platform')-$(node -p 'process.arch')"
RELEASE="$ROOT/dist/pgs-$VERSION-$PLATFORM"
COMPONENTS=${PGS_IMAGE_COMPONENTS:-coordinator router agent pgsctl}
PG_VERSIONS_DIR=${PGS_PG_VERSIONS_DIR:-/var/lib/pgs/postgres}
# The image's pgs user: a fixed system uid, so volumes keep their owner across image versions.
PGS_UID=990

# The machine's Podman settings from setup-podman.sh (runc, cgroupfs, ulimits that work without systemd), if made.
if [ -z "${CONTAINERS_CONF:-}" ] && [ -f /run/pgs-podman/containers.conf ]; then export CONTAINERS_CONF=/run/pgs-podman/containers.conf; fi
command -v podman >/dev/null 2>&1 || die "podman is not installed (apt-get install podman runc)"
[ -d "$RELEASE" ] || die "$RELEASE is missing: run \`npm run package\` first"
NODE=$(command -v "${PGS_NODE:-node}") || die "no node binary to put in the images"
NODE=$(readlink -f "$NODE")

# A file, keeping its path (symlinks resolved, so the rootfs needs no link targets).
put() { mkdir -p "$ROOTFS$(dirname "$1")"; cp -L "$1" "$ROOTFS$1"; }
# The shared libraries a binary or library needs, as ldd resolves them on this host.
libs_of() { ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'; }
put_with_libs() {
  local f
  for f in "$@"; do put "$f"; done
  for f in "$@"; do libs_of "$f"; done | sort -u | while read -r lib; do [ -n "$lib" ] && put "$lib"; done
}

build() {
  local component=$1 command user entry_dir
  case "$component" in
    coordinator) command=pgs-coordinator; user=pgs ;;
    router) command=pgs-router; user=pgs ;;
    agent) command=pgs-agent; user=root ;;
    pgsctl) command=pgsctl; user=pgs ;;
    *) die "unknown component $component (coordinator, router, agent, pgsctl)" ;;
  esac
  local image="localhost/${command}:$VERSION"
  ROOTFS=$(mktemp -d /tmp/pgs-image-rootfs.XXXXXX)
  # Node, and a shell for the launcher script.
  put_with_libs "$NODE" /bin/sh
  if [ "$NODE" != /usr/bin/node ]; then mkdir -p "$ROOTFS/usr/bin" && ln -sf "$NODE" "$ROOTFS/usr/bin/node"; fi
  # The component's part of the release, at the path the units use.
  mkdir -p "$ROOTFS/opt/pgs"
  tar -xzf "$ROOT/dist/pgs-$component-$VERSION-$PLATFORM.tar.gz" -C "$ROOTFS/opt/pgs" --strip-components=1
  # The launcher resolves its own path (readlink -f) and its directory (dirname).
  put_with_libs /usr/bin/readlink /usr/bin/dirname
  mkdir -p "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/var/lib/pgs/$component"
  chmod 1777 "$ROOTFS/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\npgs:x:%s:%s:pgs:/var/lib/pgs:/bin/sh\n' "$PGS_UID" "$PGS_UID" >"$ROOTFS/etc/passwd"
  printf 'root:x:0:\npgs:x:%s:\n' "$PGS_UID" >"$ROOTFS/etc/group"
  # TLS roots for operators whose coordinator certificate comes from a public CA (pgsctl --ca is the usual way).
  [ -d /etc/ssl/certs ] && mkdir -p "$ROOTFS/etc/ssl" && cp -rL /etc/ssl/certs "$ROOTFS/etc/ssl/" 2>/dev/null || true
  local env_extra=()
  if [ "$component" = agent ]; then
    # The process runtime: postgres, initdb, pg_basebackup, pg_rewind ... as the postgres user, and cp for clones.
    if [ -z "${PGS_PG_MAJOR:-}" ]; then
      PGS_PG_MAJOR=$(ls /usr/lib/postgresql 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -1 || true)
    fi
    local major=${PGS_PG_MAJOR:?no PostgreSQL server under /usr/lib/postgresql; install postgresql or set PGS_PG_MAJOR}
    mkdir -p "$ROOTFS/usr/lib/postgresql" "$ROOTFS/usr/share/postgresql"
    cp -a "/usr/lib/postgresql/$major" "$ROOTFS/usr/lib/postgresql/"
    cp -a "/usr/share/postgresql/$major" "$ROOTFS/usr/share/postgresql/"
    [ -d /usr/share/zoneinfo ] && mkdir -p "$ROOTFS/usr/share" && cp -a /usr/share/zoneinfo "$ROOTFS/usr/share/"
    put_with_libs /bin/cp $(find "/usr/lib/postgresql/$major/bin" -type f) $(find "/usr/lib/postgresql/$major/lib" -name '*.so' 2>/dev/null)
    # The extra majors of setup-postgres-versions.sh, when this machine has them (self-contained trees:
    # their binaries find lib/ and share/ beside them; the agent finds <dir>/*/bin by default).
    if [ -d "$PG_VERSIONS_DIR" ]; then
      mkdir -p "$ROOTFS$(dirname "$PG_VERSIONS_DIR")"
      cp -a "$PG_VERSIONS_DIR" "$ROOTFS$(dirname "$PG_VERSIONS_DIR")/"
      put_with_libs $(find "$PG_VERSIONS_DIR" -path '*/bin/*' -type f)
    fi
    local pg_uid pg_gid
    pg_uid=$(id -u postgres) || die "no postgres OS user on this host"
    pg_gid=$(id -g postgres)
    printf 'postgres:x:%s:%s:PostgreSQL:/var/lib/postgresql:/bin/sh\n' "$pg_uid" "$pg_gid" >>"$ROOTFS/etc/passwd"
    printf 'postgres:x:%s:\n' "$pg_gid" >>"$ROOTFS/etc/group"
    env_extra+=(--change "ENV PGS_DATA_ROOT=/var/lib/pgs/agent" --change "VOLUME /var/lib/pgs/agent")
  elif [ "$component" = coordinator ]; then
    env_extra+=(--change "ENV PGS_DATA_DIR=/var/lib/pgs/coordinator" --change "VOLUME /var/lib/pgs/coordinator" --change "EXPOSE 7400" --change "EXPOSE 7480")
  elif [ "$component" = router ]; then
    env_extra+=(--change "ENV PGS_CACHE_PATH=/var/lib/pgs/router/routes.db" --change "VOLUME /var/lib/pgs/router" --change "EXPOSE 5432")
  fi
  [ "$user" = pgs ] && chown -R "$PGS_UID:$PGS_UID" "$ROOTFS/var/lib/pgs" && chmod 0700 "$ROOTFS/var/lib/pgs/$component"
  tar -C "$ROOTFS" -cf - . | podman import \
    --change "ENTRYPOINT [\"/opt/pgs/bin/$command\"]" \
    --change "ENV PATH=/opt/pgs/bin:/usr/bin:/bin" \
    --change 'ENV LANG=C.UTF-8' \
    --change "USER $user" \
    --change 'WORKDIR /var/lib/pgs' \
    --change 'STOPSIGNAL SIGTERM' \
    --change "LABEL org.opencontainers.image.title=$command" \
    --change "LABEL org.opencontainers.image.version=$VERSION" \
    "${env_extra[@]}" \
    -q - "$image" >/dev/null
  rm -rf "$ROOTFS"
  ROOTFS=
  say "built $image"
  echo "$image"
}

ROOTFS=
trap '[ -z "$ROOTFS" ] || rm -rf "$ROOTFS"' EXIT

for c in $COMPONENTS; do build "$c"; done
