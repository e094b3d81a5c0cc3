#!/usr/bin/env bash
# install_tests.sh - tests of `cmake --install` and of the Debian package
# (cmake/Install.cmake).
#
#   install_tests.sh TEST BUILD PM_OPTIONS
#   install_tests.sh list
#
# TEST is one of:
#   tree          cmake --install BUILD --prefix $PM_PREFIX; the files, the
#                 library's SONAME and links, no build paths in them
#   pkgconfig     a program linked with `pkg-config --cflags --libs poolmalloc`
#   find_package  a CMake project using find_package(poolmalloc)
#   wrapper       the installed poolmalloc finds the installed library on its
#                 own: --version, --help, a report, poolmalloc-report
#   man           the generated poolmalloc(1) lists every variable pm-options
#                 lists; the pages render without warnings
#   apt_lock      every apt-get in scripts/deps.sh and .ci/run waits for the
#                 dpkg lock (DPkg::Lock::Timeout), every dpkg -i/-r/--purge
#                 here goes through dpkg_wait
#   deb           cpack -G DEB: dpkg-deb -I fields, dpkg-deb -c paths, the
#                 unpacked tree works; as root with CI=true or
#                 POOLMALLOC_TEST_DPKG=1 also dpkg -i, use, dpkg -r
# pkgconfig, find_package, wrapper and man use the tree `tree` installs (a
# CTest fixture). Environment, set by tests/install/CMakeLists.txt: PM_SRC,
# PM_VERSION, PM_PREFIX, PM_WORK, PM_LIBDIR (the library directory, relative
# to the prefix), PM_MAN_DIR, PM_CC, PM_CMAKE, PM_CPACK. Each test works in
# $PM_WORK/TEST, removed on success and kept on failure.
# Exit 0 pass, 1 fail, 77 skipped.

# shellcheck disable=SC2016,SC2015,SC2086,SC2317,SC2013  # single-quoted $VARS are for the commands' shells; functions run through "t_$test"
set -u
tests="tree pkgconfig find_package wrapper man deb apt_lock"
if [ "${1-}" = list ]; then printf '%s\n' $tests; exit 0; fi
[ $# -eq 3 ] || { echo "usage: $0 TEST BUILD PM_OPTIONS" >&2; exit 2; }
test=$1 BUILD=$2 PMOPT=$3
for v in PM_SRC PM_VERSION PM_PREFIX PM_WORK PM_LIBDIR PM_MAN_DIR PM_CC PM_CMAKE PM_CPACK; do
  [ -n "${!v-}" ] || { echo "$0: $v is not set (run through ctest)" >&2; exit 2; }
done
SRC=$PM_SRC VERSION=$PM_VERSION PREFIX=$PM_PREFIX WORK=$PM_WORK/$test LIBDIR=$PM_LIBDIR
MAJOR=${VERSION%%.*}

# nothing from the caller's environment may change what is tested
test_dpkg=${POOLMALLOC_TEST_DPKG-}
unset LD_PRELOAD POOLMALLOC_LIB "${!POOLMALLOC_@}" PKG_CONFIG_PATH CMAKE_PREFIX_PATH

fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
skip() { echo "SKIP: $*"; exit 77; }
need() { command -v "$1" >/dev/null 2>&1 || skip "'$1' is not installed"; }
# check WHAT EXPECTED ACTUAL
check() {
  if [ "$2" = "$3" ]; then ok "$1: $3"; else fail "$1: expected [$2], got [$3]"; fi
}
# has WHAT FILE PATTERN: grep -E PATTERN in FILE
has() {
  if grep -qE -- "$3" "$2"; then ok "$1"; else fail "$1: no /$3/ in $2: $(head -c 600 "$2")"; fi
}

rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
cd "$WORK" || exit 1

# a small program that allocates, for the wrapper: sort, from coreutils
run_sort() { seq 1 3000 | "$@" sort -rn > /dev/null; }

# layout ROOT PREFIX-IN-FILES: the installed files under ROOT (a prefix, or
# the /usr of an unpacked .deb)
layout() {
  local r=$1 lib f
  lib=$r/$LIBDIR
  for f in bin/poolmalloc bin/poolmalloc-report libexec/poolmalloc/pm-options; do
    [ -f "$r/$f" ] && [ -x "$r/$f" ] && ok "$f, executable" || fail "$f missing or not executable"
  done
  for f in include/poolmalloc.h share/man/man1/poolmalloc.1 share/man/man1/poolmalloc-report.1 \
           share/man/man3/poolmalloc.3 share/man/man3/poolmalloc_version.3 \
           share/man/man3/poolmalloc_get_totals.3 share/doc/poolmalloc/README.md \
           "$LIBDIR/pkgconfig/poolmalloc.pc" "$LIBDIR/cmake/poolmalloc/poolmalloc-config.cmake" \
           "$LIBDIR/cmake/poolmalloc/poolmalloc-config-version.cmake" \
           "$LIBDIR/cmake/poolmalloc/poolmalloc-targets.cmake"; do
    [ -f "$r/$f" ] && ok "$f" || fail "$f missing"
  done
  cmp -s "$r/include/poolmalloc.h" "$SRC/include/poolmalloc.h" && ok "poolmalloc.h is the source's" ||
    fail "installed poolmalloc.h differs from include/poolmalloc.h"
  # libpoolmalloc.so -> .so.MAJOR -> .so.VERSION, SONAME libpoolmalloc.so.MAJOR
  check "libpoolmalloc.so links to" "libpoolmalloc.so.$MAJOR" "$(readlink "$lib/libpoolmalloc.so")"
  check "libpoolmalloc.so.$MAJOR links to" "libpoolmalloc.so.$VERSION" \
    "$(readlink "$lib/libpoolmalloc.so.$MAJOR")"
  [ -f "$lib/libpoolmalloc.so.$VERSION" ] && [ ! -L "$lib/libpoolmalloc.so.$VERSION" ] &&
    ok "libpoolmalloc.so.$VERSION is a file" || fail "no file $lib/libpoolmalloc.so.$VERSION"
  if command -v readelf >/dev/null 2>&1; then
    check "SONAME" "libpoolmalloc.so.$MAJOR" \
      "$(readelf -d "$lib/libpoolmalloc.so.$VERSION" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
    for f in "$lib/libpoolmalloc.so.$VERSION" "$r/libexec/poolmalloc/pm-options"; do
      if readelf -d "$f" | grep -qE 'RPATH|RUNPATH'; then fail "${f#"$r"/} has an RPATH"; else ok "${f#"$r"/}: no RPATH"; fi
    done
  fi
  # the installed wrapper knows where the library is, relative to bin/
  has "wrapper: installed_libdir" "$r/bin/poolmalloc" "^installed_libdir=\.\./$LIBDIR\$"
  has "wrapper: installed_libexecdir" "$r/bin/poolmalloc" "^installed_libexecdir=\.\./libexec/poolmalloc\$"
  # pkg-config file
  has "poolmalloc.pc: prefix" "$lib/pkgconfig/poolmalloc.pc" "^prefix=$2\$"
  has "poolmalloc.pc: libdir" "$lib/pkgconfig/poolmalloc.pc" "^libdir=\\\$\{prefix\}/$LIBDIR\$"
  has "poolmalloc.pc: Version" "$lib/pkgconfig/poolmalloc.pc" "^Version: $VERSION\$"
  has "poolmalloc-config-version.cmake: version" \
    "$lib/cmake/poolmalloc/poolmalloc-config-version.cmake" "PACKAGE_VERSION \"$VERSION\""
  # the installed README.md links only to files installed beside it
  local link target broken=''
  while IFS= read -r link; do
    target=${link#*](} target=${target%)} target=${target%%#*}
    case $target in ''|*://*|mailto:*) continue ;; esac
    [ -e "$r/share/doc/poolmalloc/$target" ] || broken+=" $target"
  done < <(grep -oE '!?\[[^]]*\]\([^)]*\)' "$r/share/doc/poolmalloc/README.md")
  [ -z "$broken" ] && ok "README.md: every relative link resolves under share/doc/poolmalloc" ||
    fail "README.md: links to files not installed:$broken"
  # the man pages carry the version
  has "poolmalloc.1: version" "$r/share/man/man1/poolmalloc.1" "^\.TH POOLMALLOC 1 .*poolmalloc $VERSION"
  # no text file refers to the build or the source tree (but to the prefix,
  # which is in the build tree here)
  local bad='' t
  for t in $(grep -rIl -e "$BUILD" -e "$SRC/" "$r" 2>/dev/null); do
    sed "s|$2||g" "$t" | grep -q -e "$BUILD" -e "$SRC/" && bad+=" $t"
  done
  [ -z "$bad" ] && ok "no text file names the build or source tree" ||
    fail "files naming the build or source tree:$bad"
}

t_tree() {
  rm -rf "$PREFIX"
  if "$PM_CMAKE" --install "$BUILD" --prefix "$PREFIX" > install.log 2>&1; then
    ok "cmake --install $BUILD --prefix $PREFIX"
  else
    fail "cmake --install failed: $(tail -20 install.log)"; return
  fi
  layout "$PREFIX" "$PREFIX"
  # pm-options installed is the one built
  check "installed pm-options prints the build's table" "$("$PMOPT")" \
    "$("$PREFIX/libexec/poolmalloc/pm-options")"
  # everything under the prefix
  local n
  n=$(sed -n '/^-- \(Installing\|Up-to-date\): /{s/^-- [A-Za-z-]*: //;p}' install.log |
      grep -vc "^$PREFIX/")
  check "files installed outside the prefix" 0 "$n"
}

t_pkgconfig() {
  need pkg-config
  need "$PM_CC"
  export PKG_CONFIG_PATH=$PREFIX/$LIBDIR/pkgconfig
  check "pkg-config --modversion" "$VERSION" "$(pkg-config --modversion poolmalloc 2>&1)"
  check "pkg-config --variable=libdir" "$PREFIX/$LIBDIR" "$(pkg-config --variable=libdir poolmalloc 2>&1)"
  local flags
  flags=$(pkg-config --cflags --libs poolmalloc) || { fail "pkg-config --cflags --libs failed"; return; }
  ok "pkg-config --cflags --libs poolmalloc: $flags"
  # shellcheck disable=SC2086  # the flags are words
  if "$PM_CC" -Wall -Wextra -Werror -o consumer "$SRC/tests/install/consumer.c" $flags 2> cc.log; then
    ok "consumer built with pkg-config's flags"
  else
    fail "consumer did not build: $(cat cc.log)"; return
  fi
  local out
  out=$(LD_LIBRARY_PATH=$(pkg-config --variable=libdir poolmalloc) ./consumer "$VERSION" 2>&1) &&
    ok "consumer runs: $out" || fail "consumer failed: $out"
  # README "Install": a program linked against a prefix outside the loader's
  # path does not start without help; -Wl,-rpath from pkg-config is the fix
  out=$(./consumer "$VERSION" 2>&1) && fail "consumer started without LD_LIBRARY_PATH or rpath: $out" ||
    { grep -q 'libpoolmalloc.so.0: cannot open shared object file' <<< "$out" && ok "without rpath: $out" ||
      fail "without rpath: $out"; }
  # shellcheck disable=SC2086  # the flags are words
  if "$PM_CC" -o consumer-rpath "$SRC/tests/install/consumer.c" $flags \
       -Wl,-rpath,"$(pkg-config --variable=libdir poolmalloc)" 2> cc.log; then
    out=$(./consumer-rpath "$VERSION" 2>&1) && ok "with -Wl,-rpath,\$(pkg-config --variable=libdir poolmalloc): $out" ||
      fail "consumer built with rpath failed: $out"
  else
    fail "consumer with rpath did not build: $(cat cc.log)"
  fi
  out=$(LD_LIBRARY_PATH=$PREFIX/$LIBDIR ldd ./consumer 2>&1 | grep libpoolmalloc)
  case $out in
    *"$PREFIX/$LIBDIR/libpoolmalloc.so.$MAJOR"*) ok "ldd: $out" ;;
    *) fail "ldd does not show the installed library: $out" ;;
  esac
}

t_find_package() {
  need "$PM_CC"
  if "$PM_CMAKE" -S "$SRC/tests/install/consumer" -B build -DCMAKE_PREFIX_PATH="$PREFIX" \
       -DCMAKE_C_COMPILER="$PM_CC" -DPM_EXPECTED_VERSION="$VERSION" \
       -DPM_EXPECTED_PREFIX="$PREFIX" > configure.log 2>&1; then
    ok "find_package(poolmalloc) with CMAKE_PREFIX_PATH=$PREFIX"
    has "imported target's library" configure.log \
      "poolmalloc::poolmalloc: $PREFIX/$LIBDIR/libpoolmalloc.so.$VERSION"
  else
    fail "configuring the consumer project failed: $(tail -30 configure.log)"; return
  fi
  if "$PM_CMAKE" --build build > build.log 2>&1; then
    ok "consumer built with poolmalloc::poolmalloc"
  else
    fail "consumer did not build: $(tail -30 build.log)"; return
  fi
  local out
  out=$(build/consumer "$VERSION" 2>&1) && ok "consumer runs: $out" || fail "consumer failed: $out"
}

# the installed wrapper, run as the user would, from another directory
t_wrapper() {
  local W=$PREFIX/bin/poolmalloc out lib
  lib=$PREFIX/$LIBDIR/libpoolmalloc.so.$VERSION
  check "poolmalloc --version" "poolmalloc $VERSION" "$("$W" --version 2>&1)"
  # without python3 the wrapper reads the version from a report: the same
  mkdir -p nopy && printf '#!/bin/sh\nexit 1\n' > nopy/python3 && chmod +x nopy/python3
  check "poolmalloc --version without python3" "poolmalloc $VERSION" \
    "$(PATH=$PWD/nopy:$PATH "$W" --version 2>&1)"
  out=$("$W" --help 2>&1)
  grep -qxF "library: $lib" <<< "$out" && ok "--help: library: $lib" ||
    fail "--help does not name the installed library: $(tail -3 <<< "$out")"
  grep -qE "^variables \(from $PREFIX/bin/\.\./libexec/poolmalloc/pm-options\)" <<< "$out" &&
    ok "--help: variables from the installed pm-options" ||
    fail "--help: variables not from the installed pm-options: $(grep '^variables' <<< "$out")"
  check "LD_PRELOAD the command gets" "$lib" "$("$W" sh -c 'echo "$LD_PRELOAD"' 2>&1)"
  # through a symlink (as in ~/bin)
  ln -s "$W" pm
  check "through a symlink: --version" "poolmalloc $VERSION" "$(./pm --version 2>&1)"
  # POOLMALLOC_LIB still overrides the search
  check "POOLMALLOC_LIB overrides" "$(readlink -f "$BUILD/libpoolmalloc.so")" \
    "$(POOLMALLOC_LIB=$BUILD/libpoolmalloc.so "$W" sh -c 'echo "$LD_PRELOAD"' 2>&1)"
  # the library's verbose line has the same version (true does not allocate: sort)
  run_sort "$W" --verbose -- 2> verbose.err
  has "POOLMALLOC_VERBOSE=1: version $VERSION" verbose.err "version $VERSION\b"
  # a report, on stderr and as files
  run_sort "$W" --stats json -- 2> report.err
  has "--stats json: a report of version $VERSION" report.err "\"poolmalloc\":\{.*\"version\":\"$VERSION\""
  run_sort "$W" --stats -- 2> text.err
  has "--stats: a text report" text.err "poolmalloc $VERSION report begin"
  run_sort "$W" --output reports -- 2> output.err
  has "--output: reports written" output.err "reports in .*reports \(1 file\)"
  if command -v python3 >/dev/null 2>&1; then
    if "$PREFIX/bin/poolmalloc-report" --json reports > agg.json 2> agg.err; then
      ok "poolmalloc-report --json reads them"
      has "poolmalloc-report: one report" agg.json '"reports": 1'
    else
      fail "poolmalloc-report failed: $(cat agg.err)"
    fi
  else
    echo "(python3 not installed: poolmalloc-report not run)"
  fi
}

# man_lint PAGE: no warning from groff -ww or man --warnings
man_lint() {
  local err
  if command -v groff >/dev/null 2>&1; then
    err=$(groff -man -ww -z "$1" 2>&1)
    [ -z "$err" ] && ok "groff -man -ww -z ${1##*/}: no warning" || fail "groff on ${1##*/}: $err"
  fi
  if command -v man >/dev/null 2>&1; then
    err=$(MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null)
    [ -z "$err" ] && ok "man -l ${1##*/}: no warning" || fail "man -l ${1##*/}: $err"
  fi
}

t_man() {
  local page=$PM_MAN_DIR/poolmalloc.1 v n=0
  [ -f "$page" ] || { fail "$page was not generated"; return; }
  cmp -s "$page" "$PREFIX/share/man/man1/poolmalloc.1" && ok "installed poolmalloc.1 is the generated one" ||
    fail "installed poolmalloc.1 differs from $page"
  for v in $("$PMOPT" | awk '{print $1}'); do
    n=$((n + 1))
    grep -qx "\.B $v" "$page" && ok "poolmalloc.1 documents $v" || fail "poolmalloc.1 does not document $v"
  done
  [ "$n" -ge 5 ] && ok "pm-options lists $n variables" || fail "pm-options listed only $n variables"
  # every option of the installed wrapper's --help is in OPTIONS
  local o opts
  opts=$(sed -n 's/^  \(-[-a-z]*\)\(, \(--[a-z-]*\)\)\{0,1\}.*/\1 \3/p' <<< "$("$PREFIX/bin/poolmalloc" --help 2>&1)")
  n=0
  for o in $opts; do
    n=$((n + 1))
    sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$page" | grep -qF "\fB${o//-/\\-}\fR" ||
      fail "poolmalloc.1 OPTIONS lacks $o (from poolmalloc --help)"
  done
  [ "$n" -ge 15 ] && ok "poolmalloc.1 OPTIONS has the $n options of --help" || fail "--help listed only $n options: $opts"
  # and the page lists no variable the library does not have (but POOLMALLOC_LIB, the wrapper's)
  for v in $(grep -o '^\.B POOLMALLOC_[A-Z][A-Z_]*$' "$page" | sed 's/^\.B //'); do
    [ "$v" = POOLMALLOC_LIB ] || "$PMOPT" | grep -q "^$v " || fail "poolmalloc.1 documents $v, which pm-options does not list"
  done
  grep -q '@' "$PREFIX/share/man/man1/poolmalloc.1" "$PREFIX/share/man/man1/poolmalloc-report.1" \
    "$PREFIX/share/man/man3/poolmalloc.3" && fail "a man page has an unreplaced @placeholder@" ||
    ok "no placeholder left"
  if ! command -v groff >/dev/null 2>&1 && ! command -v man >/dev/null 2>&1; then
    echo "(neither groff nor man installed: pages not rendered)"
    return
  fi
  man_lint "$page"
  man_lint "$PREFIX/share/man/man1/poolmalloc-report.1"
  man_lint "$PREFIX/share/man/man3/poolmalloc.3"
  if command -v man >/dev/null 2>&1; then
    # man finds the pages under the prefix, the function names included
    check "man -w poolmalloc" "$PREFIX/share/man/man1/poolmalloc.1" \
      "$(man -M "$PREFIX/share/man" -w poolmalloc 2>&1)"
    MANWIDTH=80 man -M "$PREFIX/share/man" 3 poolmalloc_get_totals > get_totals.txt 2>&1
    has "man 3 poolmalloc_get_totals shows poolmalloc(3)" get_totals.txt "poolmalloc_totals \*out"
  fi
}

t_deb() {
  need dpkg-deb
  need dpkg
  local arch deb
  arch=$(dpkg --print-architecture)
  if "$PM_CPACK" -G DEB --config "$BUILD/CPackConfig.cmake" -B "$WORK/pkg" > cpack.log 2>&1; then
    ok "cpack -G DEB"
  else
    fail "cpack failed: $(tail -30 cpack.log)"; return
  fi
  deb=$WORK/pkg/poolmalloc_${VERSION}_$arch.deb
  [ -f "$deb" ] || { fail "no $deb: $(ls "$WORK/pkg")"; return; }
  ok "$(basename "$deb"): $(stat -c %s "$deb") bytes"
  # control fields
  dpkg-deb -I "$deb" > info.txt || { fail "dpkg-deb -I failed"; return; }
  check "Package" poolmalloc "$(dpkg-deb -f "$deb" Package)"
  check "Version" "$VERSION" "$(dpkg-deb -f "$deb" Version)"
  check "Architecture" "$arch" "$(dpkg-deb -f "$deb" Architecture)"
  has "Depends: libc6" info.txt "^ Depends: .*libc6 \(>= [0-9.]+\)"
  has "Recommends: python3" info.txt "^ Recommends: .*python3"
  has "Maintainer" info.txt "^ Maintainer: .+<.+@.+>"
  has "Description" info.txt "^ Description: .*malloc"
  has "control: shlibs" info.txt "^ +[0-9]+ bytes, +[0-9]+ lines +shlibs"
  dpkg-deb -e "$deb" control
  has "shlibs: libpoolmalloc $MAJOR" control/shlibs "^libpoolmalloc $MAJOR poolmalloc \(>= $VERSION\)"
  has "postinst runs ldconfig" control/postinst "ldconfig"
  # the files: all under /usr, the usual places
  dpkg-deb -c "$deb" | awk '{print $6}' | sed 's/^\.//' > paths.txt
  local bad
  bad=$(grep -v -e '^/$' -e '^/usr/' -e '^/usr$' paths.txt)
  [ -z "$bad" ] && ok "every path is under /usr ($(wc -l < paths.txt) entries)" || fail "paths outside /usr: $bad"
  local p
  for p in /usr/bin/poolmalloc /usr/bin/poolmalloc-report "/usr/$LIBDIR/libpoolmalloc.so.$VERSION" \
           "/usr/$LIBDIR/libpoolmalloc.so.$MAJOR" "/usr/$LIBDIR/libpoolmalloc.so" /usr/include/poolmalloc.h \
           "/usr/$LIBDIR/pkgconfig/poolmalloc.pc" "/usr/$LIBDIR/cmake/poolmalloc/poolmalloc-config.cmake" \
           /usr/libexec/poolmalloc/pm-options /usr/share/man/man1/poolmalloc.1 \
           /usr/share/man/man1/poolmalloc-report.1 /usr/share/man/man3/poolmalloc.3; do
    grep -qxF "$p" paths.txt && ok "contains $p" || fail "does not contain $p"
  done
  # the unpacked tree is an installation with the prefix /usr, and works where it is
  dpkg-deb -x "$deb" root || { fail "dpkg-deb -x failed"; return; }
  layout "$PWD/root/usr" /usr
  if command -v file >/dev/null 2>&1; then
    case $(file -L "root/usr/$LIBDIR/libpoolmalloc.so") in
      *"not stripped"*) fail "the packaged library is not stripped" ;;
      *stripped*) ok "the packaged library is stripped" ;;
    esac
  fi
  check "unpacked: poolmalloc --version" "poolmalloc $VERSION" "$(root/usr/bin/poolmalloc --version 2>&1)"
  run_sort root/usr/bin/poolmalloc --stats json -- 2> unpacked.err
  has "unpacked: a report under the unpacked library" unpacked.err "\"version\":\"$VERSION\""

  # dpkg -i: only as root, and only when asked for (it changes the system)
  if [ "$(id -u)" != 0 ]; then
    echo "(not root: dpkg -i / dpkg -r not tried)"
    return
  fi
  if [ "${CI-}" != true ] && [ "$test_dpkg" != 1 ]; then
    echo "(dpkg -i not tried: set POOLMALLOC_TEST_DPKG=1 (or CI=true) to install and remove the package)"
    return
  fi
  if dpkg-query -W -f='${Status}' poolmalloc 2>/dev/null | grep -q 'ok installed'; then
    echo "(a poolmalloc package is installed already: dpkg -i not tried, it is left alone)"
    return
  fi
  deb_installed "$deb"
}

t_apt_lock() {
  local f line n=0
  for f in "$SRC/scripts/deps.sh" "$SRC/.ci/run" "$SRC/tests/install/install_tests.sh"; do
    [ -f "$f" ] || continue
    # apt-get run as a command (not in a comment or an echoed hint; this
    # file has none, only the patterns below)
    [ "${f##*/}" = install_tests.sh ] || while IFS= read -r line; do
      n=$((n + 1))
      case $line in
        *DPkg::Lock::Timeout*) ok "${f#"$SRC"/}: $line" ;;
        *) fail "${f#"$SRC"/}: apt-get without DPkg::Lock::Timeout: $line" ;;
      esac
    done < <(sed -e 's/#.*//' -e '/echo/d' -e '/skip /d' "$f" | grep -E '(^|[^-a-z_])apt-get[[:space:]]')
    while IFS= read -r line; do
      fail "${f#"$SRC"/}: dpkg without dpkg_wait: $line"
    done < <(sed -e 's/#.*//' -e '/echo/d' "$f" | grep -E '(^|[;&|(!]|then|do|if)[[:space:]]*dpkg[[:space:]]+(-i|-r|--purge|--install|--remove)')
  done
  [ "$n" -ge 2 ] && ok "$n apt-get commands looked at" || fail "only $n apt-get commands found"
  # dpkg_wait waits while the lock is held: a dpkg that finds it locked twice
  mkdir -p fake
  cat > fake/dpkg <<'EOF'
#!/bin/sh
n=$(cat tries 2>/dev/null || echo 0); echo $((n + 1)) > tries
if [ "$n" -lt 2 ]; then
  echo "dpkg: error: dpkg frontend lock was locked by another process with pid 4242" >&2; exit 2
fi
echo "installed $*"
EOF
  chmod +x fake/dpkg
  local out
  out=$(PATH=$PWD/fake:$PATH dpkg_wait_sleep=0 dpkg_wait -i x.deb 2>&1)
  check "dpkg_wait: after the lock is free" "installed -i x.deb" "$out"
  check "dpkg_wait: tries" 3 "$(cat tries)"
  # a failure that is not the lock is not retried
  echo 5 > tries
  printf '#!/bin/sh\necho "dpkg: error: cannot access archive" >&2; exit 2\n' > fake/dpkg
  out=$(PATH=$PWD/fake:$PATH dpkg_wait_sleep=0 dpkg_wait -i x.deb 2>&1)
  check "dpkg_wait: another error comes back at once" "dpkg: error: cannot access archive" "$out"
}

# dpkg_wait ARGS...: dpkg ARGS, waiting up to 5 minutes while another apt or
# dpkg holds its lock (dpkg has no DPkg::Lock::Timeout of its own)
dpkg_wait() {
  local out rc
  for _ in $(seq 60); do
    out=$(LC_ALL=C dpkg "$@" 2>&1) && rc=0 || rc=$?
    if [ "$rc" = 0 ] || ! grep -q 'locked by another process' <<< "$out"; then
      printf '%s\n' "$out"
      return "$rc"
    fi
    sleep "${dpkg_wait_sleep:-5}"
  done
  printf '%s\n' "$out"
  return "$rc"
}

# dpkg -i, checks, dpkg -r (also when a check fails or the test is killed)
deb_installed() {
  local out
  trap 'dpkg_wait --purge poolmalloc > dpkg-purge.log 2>&1' EXIT
  trap 'exit 1' INT TERM HUP
  if dpkg_wait -i "$1" > dpkg-i.log 2>&1; then ok "dpkg -i $(basename "$1")"; else
    fail "dpkg -i failed: $(cat dpkg-i.log)"; return
  fi
  check "installed: poolmalloc --version" "poolmalloc $VERSION" "$(poolmalloc --version 2>&1)"
  check "installed: poolmalloc is /usr/bin/poolmalloc" /usr/bin/poolmalloc "$(type -P poolmalloc)"
  check "installed: LD_PRELOAD the command gets" "/usr/$LIBDIR/libpoolmalloc.so.$VERSION" \
    "$(poolmalloc sh -c 'echo "$LD_PRELOAD"' 2>&1)"
  run_sort poolmalloc --stats json -- 2> installed.err
  has "installed: a report of version $VERSION" installed.err "\"version\":\"$VERSION\""
  run_sort env LD_PRELOAD=/usr/$LIBDIR/libpoolmalloc.so POOLMALLOC_VERBOSE=1 2> verbose.err
  has "installed: LD_PRELOAD=/usr/$LIBDIR/libpoolmalloc.so works" verbose.err "version $VERSION\b"
  out=$(ldconfig -p | grep "libpoolmalloc.so.$MAJOR ")
  [ -n "$out" ] && ok "ldconfig knows it: $out" || fail "libpoolmalloc.so.$MAJOR not in ldconfig -p"
  if command -v pkg-config >/dev/null 2>&1; then
    check "installed: pkg-config --modversion" "$VERSION" "$(pkg-config --modversion poolmalloc 2>&1)"
  fi
  if command -v man >/dev/null 2>&1; then
    check "installed: man -w poolmalloc" /usr/share/man/man1/poolmalloc.1 "$(man -w poolmalloc 2>&1)"
  fi
  if dpkg_wait -r poolmalloc > dpkg-r.log 2>&1; then ok "dpkg -r poolmalloc"; else fail "dpkg -r: $(cat dpkg-r.log)"; fi
  # the postrm (ldconfig) stays registered until a purge
  if dpkg_wait --purge poolmalloc > dpkg-purge.log 2>&1; then ok "dpkg --purge poolmalloc"; else
    fail "dpkg --purge: $(cat dpkg-purge.log)"
  fi
  trap - EXIT INT TERM HUP
  check "dpkg knows no poolmalloc package any more" "" \
    "$(dpkg-query -W -f='${Status}' poolmalloc 2>/dev/null)"
  [ ! -e /usr/bin/poolmalloc ] && [ ! -e "/usr/$LIBDIR/libpoolmalloc.so.$VERSION" ] &&
    ok "removed: no /usr/bin/poolmalloc, no library" || fail "files left after dpkg -r"
}

case " $tests " in
  *" $test "*) "t_$test" ;;
  *) echo "$0: unknown test '$test' (one of: $tests)" >&2; exit 2 ;;
esac
if [ "$fails" -gt 0 ]; then
  echo "$test: $fails check(s) failed; work directory kept: $WORK" >&2
  exit 1
fi
cd / && rm -rf "$WORK"
exit 0
