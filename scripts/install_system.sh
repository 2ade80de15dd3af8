#!/usr/bin/env bash
# The non-Python toolchains the tests need: Chromium (web tests), a JDK and JUnit 5 (Android
# core tests). Installs them with apt when missing and we are root; otherwise says what to run.
set -uo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
[ -f /usr/share/java/junit-platform-console-standalone.jar ] || need+=(junit5)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -eq 0 ]; then
  echo "system toolchains present: chromium, javac, junit5, node"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "missing system packages: ${need[*]}" >&2
  echo "install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
