#!/usr/bin/env bash
# Installs the Debian 12 packages Sekisho needs for one purpose:
#   --build    compilers, CMake/Ninja and the -dev libraries (default)
#   --test     --build plus what the tests drive: clang/libFuzzer, redis, nginx, curl, nghttp,
#              openssl, python3, headless chromium, and the real clients of the client matrix
#              (tests/integration/clients_test.cc, docs/CLIENTS.md)
#   --runtime  only the shared libraries the binary loads (the Docker image's last stage)
# Idempotent: when every package is already installed it changes nothing and needs no root.
# Otherwise it runs `apt-get update` once and installs what is missing, as root or through sudo.
set -euo pipefail

usage() {
  echo "usage: $0 [--build|--test|--runtime]" >&2
  exit 2
}

build_pkgs=(
  build-essential cmake ninja-build pkg-config ca-certificates
  libevent-dev libssl-dev libnghttp2-dev libhiredis-dev libcurl4-openssl-dev libyaml-cpp-dev
  libexpected-dev libgtest-dev libgmock-dev libbenchmark-dev libpsl-dev publicsuffix
)
test_pkgs=(
  clang libclang-rt-14-dev redis-server nginx-light curl python3 openssl nghttp2-client
  chromium chromium-driver libnss3-tools fonts-noto-cjk procps
  # the client matrix: wget, git, Python urllib/requests/httpx/pip, Java 17 (javac, keytool),
  # Node.js with undici, HTTPie, aria2, Perl LWP
  wget git python3-requests python3-httpx python3-pip openjdk-17-jdk-headless
  nodejs node-undici httpie aria2 libwww-perl liblwp-protocol-https-perl
)
# libevent's pkg-config files link libevent_core/extra/openssl/pthreads and libevent itself;
# curl is for the image's HEALTHCHECK.
runtime_pkgs=(
  libevent-2.1-7 libevent-core-2.1-7 libevent-extra-2.1-7 libevent-openssl-2.1-7 libevent-pthreads-2.1-7
  libssl3 libnghttp2-14 libhiredis0.14 libcurl4 libyaml-cpp0.7 libpsl5 publicsuffix libstdc++6 ca-certificates curl
)

purpose="build"
case "${1:-}" in
  "" | --build) purpose="build" ;;
  --test) purpose="test" ;;
  --runtime) purpose="runtime" ;;
  -h | --help) usage ;;
  *) echo "$0: unknown option '$1'" >&2; usage ;;
esac
[ $# -le 1 ] || usage

case "$purpose" in
  build) wanted=("${build_pkgs[@]}") ;;
  test) wanted=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  runtime) wanted=("${runtime_pkgs[@]}") ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
  # "ii" = desired install, currently installed; anything else (absent, half-configured) is missing.
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  [[ "$status" == ii* ]] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#wanted[@]} packages for --$purpose are installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi

# Several people may share one machine: wait for another apt run instead of failing on its lock.
apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

echo "install-deps: installing for --$purpose: ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q \
  --no-install-recommends "${missing[@]}"
