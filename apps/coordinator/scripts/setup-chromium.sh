#!/usr/bin/env bash
# Installs Debian's chromium for the coordinator's dashboard test (driven by playwright-core), only
# when /usr/bin/chromium is missing. The test skips itself when the binary is absent, so a machine
# without this step still runs the rest of the suite.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium present"
  exit 0
fi
echo "installing: chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium
