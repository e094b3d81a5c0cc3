#!/usr/bin/env bash
# make-project.sh - generates a small C project and builds it with make -j2:
# a real compiler build to run under poolmalloc
# (examples/preload-python-node.md).
#
#   examples/make-project.sh [--output REPORTS] [DIR] [FILES]
#
# DIR (default /tmp/pm-make-project) is emptied and regenerated each time, so
# every run compiles everything: FILES (default 16) .c files of about 200
# lines each (a struct, an inline hash, a lookup table, 12 loops), a header,
# a Makefile. Then `make -j2` builds it and the program runs once. With
# --output REPORTS the build and the run go through
# `scripts/poolmalloc --output REPORTS` (one JSON report per process);
# generating the files does not. Needs cc (gcc or clang) and make.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
wrap=()
if [ "${1-}" = --output ]; then
  [ $# -ge 2 ] || { echo "make-project.sh: --output needs a directory" >&2; exit 2; }
  wrap=("$here/../scripts/poolmalloc" --output "$2")
  shift 2
fi
dir=${1:-/tmp/pm-make-project}
files=${2:-16}
case $files in '' | *[!0-9]*) echo "make-project.sh: FILES must be a number" >&2; exit 2 ;; esac
for p in make cc; do
  command -v "$p" >/dev/null || { echo "make-project.sh: '$p' is not installed" >&2; exit 1; }
done

rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"

cat > common.h <<'EOF'
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
typedef struct { uint32_t key; double weight; char name[24]; } item;
static inline uint32_t mix(uint32_t x) {
  x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
  return x;
}
EOF

# plain loops and printf, no subshells: generating takes a moment
main_decls='' main_calls='' objs=''
for ((i = 1; i <= files; i++)); do
  {
    echo '#include "common.h"'
    printf 'static const uint32_t table_%d[64] = {\n' "$i"
    for ((k = 0; k < 64; k++)); do
      printf '  %uu,\n' $(((k * 2654435761 + i) % 4294967296))
    done
    echo "};"
    for ((f = 1; f <= 12; f++)); do
      cat <<EOF
static double step_${i}_$f(item *v, size_t n, uint32_t seed) {
  double acc = 0;
  for (size_t j = 0; j < n; j++) {
    uint32_t h = mix((uint32_t)j ^ seed ^ table_${i}[(j + $f) & 63]);
    v[j].key = h;
    v[j].weight = (double)(h % 1000) / ($f + 1.0);
    acc += v[j].weight * (j % $((f + 2)) == 0 ? 2.0 : 0.5);
  }
  return acc;
}
EOF
    done
    echo "double unit_$i(uint32_t seed) {"
    echo "  size_t n = 256 + seed % 64;"
    echo "  item *v = calloc(n, sizeof *v);"
    echo "  double acc = 0;"
    for ((f = 1; f <= 12; f++)); do echo "  acc += step_${i}_$f(v, n, seed + $f);"; done
    echo "  free(v);"
    echo "  return acc;"
    echo "}"
  } > "unit$i.c"
  main_decls+="double unit_$i(uint32_t seed);"$'\n'
  main_calls+="  acc += unit_$i(seed);"$'\n'
  objs+=" unit$i.o"
done

cat > main.c <<EOF
#include <stdio.h>
#include "common.h"
$main_decls
int main(void) {
  double acc = 0;
  uint32_t seed = 42;
$main_calls  printf("built and ran $files units: %.1f\n", acc);
  return 0;
}
EOF

cat > Makefile <<EOF
CC ?= cc
CFLAGS ?= -O2 -g -Wall
OBJS = main.o$objs
demo: \$(OBJS)
	\$(CC) \$(CFLAGS) -o \$@ \$(OBJS)
%.o: %.c common.h
	\$(CC) \$(CFLAGS) -c \$<
clean:
	rm -f demo *.o
EOF

"${wrap[@]}" make -j2 --no-print-directory
"${wrap[@]}" ./demo
