#!/usr/bin/env bash
# Installs the distribution's redis-server when it is missing, so that the
# Redis tests (runtime/redis, runtime/schedule/redisstore, runtime/config,
# runtime/reliability) run instead of skipping. The tests start their own
# redis-server on a free 127.0.0.1 port in a temporary directory and stop it
# by process id; this script starts nothing.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  redis-server --version
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
  # The package may start a system service on port 6379; the tests do not use it.
elif command -v brew >/dev/null 2>&1; then
  brew install redis
else
  echo "redis-server is missing and neither apt-get nor brew is available: the Redis tests will skip" >&2
  exit 0
fi
redis-server --version
