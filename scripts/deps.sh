# deps.sh - sourced by scripts/quickstart and scripts/test: makes sure the
# Debian packages poolmalloc needs are installed (apt-get as root, otherwise
# prints the exact command to run and stops).
# usage: pm_need_packages build|test
pm_need_packages() {
  local pkgs="cmake make gcc g++ binutils libjemalloc-dev"
  if [ "$1" = test ]; then
    pkgs="$pkgs libcriterion-dev pkg-config python3 perl sqlite3 git nodejs"
    pkgs="$pkgs libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 autoconf automake dpkg-dev file"
    pkgs="$pkgs clang libclang-rt-14-dev llvm-14" # tests/fuzz: libFuzzer, sanitizer runtimes, symbolizer
    pkgs="$pkgs redis-server jq xz-utils libpython3.11-testsuite"
  fi
  local missing=""
  for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing="$missing $p"
  done
  # nodejs may come from another source (nodesource); a working `node` is enough
  if command -v node >/dev/null 2>&1; then missing=$(echo "$missing" | sed 's/ nodejs//'); fi
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = 0 ]; then
    echo "poolmalloc: installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends $missing >&2
  else
    echo "poolmalloc: missing packages; run:" >&2
    echo "  sudo apt-get install -y$missing" >&2
    return 1
  fi
}

pm_build() { # $1: build dir
  cmake -S "$PM_TOP" -B "$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
    cmake --build "$1" -j"$(nproc)"
}
