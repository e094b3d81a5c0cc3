#!/bin/sh
# clang_build.sh - the fixture of the sanitizer tests (tests/fuzz/CMakeLists.txt):
# builds fuzz_ops_libfuzzer, fuzz_options_libfuzzer and fuzz_ops_tsan with
# clang.
#
# usage: clang_build.sh SOURCE_DIR BUILD_DIR configure|build
#   configure: BUILD_DIR is a clang sub-build of its own, configured here
#              (CC=clang, -DPOOLMALLOC_LIBFUZZER=ON) and then built
#   build:     BUILD_DIR is already a clang build with POOLMALLOC_LIBFUZZER
# exit 0 built, 1 failed, 77 skipped: no clang, or no libFuzzer/ASan/UBSan/TSan
# runtime (Debian: apt-get install clang libclang-rt-14-dev)
set -u
[ $# -eq 3 ] || { echo "usage: $0 SOURCE_DIR BUILD_DIR configure|build" >&2; exit 1; }
src=$1 bin=$2 mode=$3
jobs=${PM_FUZZ_JOBS:-2}

skip() {
    echo "SKIP: $*"
    # stale binaries must not run against a missing toolchain's report
    rm -f "$bin/tests/fuzz/fuzz_ops_libfuzzer" "$bin/tests/fuzz/fuzz_options_libfuzzer" \
        "$bin/tests/fuzz/fuzz_ops_tsan"
    exit 77
}

if [ "$mode" = configure ]; then
    cc=${PM_FUZZ_CC:-clang}
    command -v "$cc" >/dev/null 2>&1 || skip "$cc not found (apt-get install clang libclang-rt-14-dev)"
else
    cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$bin/CMakeCache.txt")
fi

# the runtimes: clang without libclang-rt-*-dev compiles but cannot link these
probe=$(mktemp -d) || exit 1
trap 'rm -rf "$probe"' EXIT
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return n && d[0] == 1; }' \
    >"$probe/f.c"
printf '%s\n' 'int main(void) { return 0; }' >"$probe/t.c"
"$cc" -fsanitize=fuzzer,address,undefined "$probe/f.c" -o "$probe/f" >"$probe/log" 2>&1 ||
    { cat "$probe/log"; skip "$cc cannot link -fsanitize=fuzzer,address,undefined (apt-get install libclang-rt-14-dev)"; }
"$cc" -fsanitize=thread "$probe/t.c" -o "$probe/t" >"$probe/log" 2>&1 ||
    { cat "$probe/log"; skip "$cc cannot link -fsanitize=thread (apt-get install libclang-rt-14-dev)"; }

if [ "$mode" = configure ]; then
    cxx=${PM_FUZZ_CXX:-clang++}
    command -v "$cxx" >/dev/null 2>&1 || cxx=c++
    echo "configuring $bin with $cc"
    cmake -S "$src" -B "$bin" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOOLMALLOC_LIBFUZZER=ON >"$probe/configure.log" 2>&1 ||
        { cat "$probe/configure.log"; echo "FAIL: configuring the clang build"; exit 1; }
fi
echo "building fuzz_clang_targets in $bin (-j$jobs)"
cmake --build "$bin" --target fuzz_clang_targets -j"$jobs" >"$probe/build.log" 2>&1 ||
    { tail -n 60 "$probe/build.log"; echo "FAIL: building the clang targets"; exit 1; }
grep -E 'warning:' "$probe/build.log" | sort -u | head -n 20
echo "built: fuzz_ops_libfuzzer fuzz_options_libfuzzer fuzz_ops_tsan"
