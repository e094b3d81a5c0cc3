# deps.sh - sourced by scripts/quickstart and scripts/test: makes sure the
# Debian packages poolmalloc needs are installed (apt-get as root, otherwise
# prints the exact command to run and stops).
# usage: pm_need_packages build|test
#
# Another apt or dpkg (unattended-upgrades, cloud-init, a parallel job) may
# hold the dpkg lock: every apt-get here waits up to 5 minutes for it
# (DPkg::Lock::Timeout). `apt-get update` takes the lists lock too, which
# that option does not cover: it is retried while that lock is held.
pm_apt_get() {
  local i=0 err rc
  while :; do
    # apt's output on stderr as before; its errors kept to look at
    { err=$(LC_ALL=C apt-get -o DPkg::Lock::Timeout=300 "$@" 2>&1 1>&3) && rc=0 || rc=$?; } 3>&2
    if [ "$rc" = 0 ] || [ "$i" -ge 60 ] || ! grep -q 'Could not get lock' <<< "$err"; then
      [ -z "$err" ] || printf '%s\n' "$err" >&2
      return "$rc"
    fi
    i=$((i + 1)); sleep 5
  done
}

pm_need_packages() {
  local pkgs="cmake make gcc g++ binutils libjemalloc-dev libunwind8"
  if [ "$1" = test ]; then
    pkgs="$pkgs libcriterion-dev pkg-config python3 perl sqlite3 git nodejs"
    pkgs="$pkgs libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 autoconf automake dpkg-dev file"
    pkgs="$pkgs clang libclang-rt-14-dev llvm-14" # tests/fuzz: libFuzzer, sanitizer runtimes, symbolizer
    pkgs="$pkgs redis-server jq xz-utils libpython3.11-testsuite google-perftools"
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
    pm_apt_get update -qq >&2 && pm_apt_get install -y -qq --no-install-recommends $missing >&2
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
