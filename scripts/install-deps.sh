#!/usr/bin/env bash
# Installs the Debian packages driftd needs, and only those that are missing (iproute2's
# `ip` builds the network namespaces of the partition test).
#   --ci-extra  also what scripts/ci-extra.sh needs: clang, the sanitizer and libFuzzer
#               runtimes (libclang-rt-14-dev, only recommended by clang), llvm-symbolizer.
set -euo pipefail

packages=(
  build-essential cmake pkg-config curl
  libcaf-dev libboost-dev nlohmann-json3-dev libspdlog-dev libgtest-dev libssl-dev
  librocksdb-dev prometheus-cpp-dev
  nodejs npm
  prometheus chromium
  iproute2
)
case "${1:-}" in
  "") ;;
  --ci-extra) packages+=(clang libclang-rt-14-dev llvm clang-format clang-tidy) ;;
  *) echo "usage: $0 [--ci-extra]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  # A tool that is already on the PATH (node, npm from another source) counts as present.
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
    build-essential) command -v g++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1 && continue ;;
    cmake) command -v cmake >/dev/null 2>&1 && continue ;;
    curl) command -v curl >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi

echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
