#!/usr/bin/env bash
# layering.sh SRC_DIR DESIGN_MD - the layers of src/ stay one way down.
#
# Every src/ file belongs to a layer (the table below, the same as the
# picture in docs/design.md and src/types.h). A file may include the
# headers of lower layers and its own module's header; a header of its own
# layer (a peer) or of a higher layer is an error: that is how include and
# call cycles start. Also checks that every src/ file appears in the file
# map of docs/design.md and that no file is missing from this table.
set -euo pipefail
src=$1 design=$2
declare -A layer=(
  [common]=0 [je_support]=1 [os]=1 [fmt]=2 [unwind]=2 [istack]=2
  [options]=3 [sizeclass]=3 [counters]=3 [types]=4 [arena]=5 [page]=6
  [heap]=7 [fallback]=7 [sample]=7 [lifetime]=8 [symbols]=8 [start]=9
  [alloc]=10 [aligned]=10 [stats]=10 [profile]=11 [report]=12 [init]=13
  [glibc_compat]=14 [override]=15
)
# modules whose .c file implements another module's header
declare -A module=([aligned]=alloc)
fail=0
for f in "$src"/*.c "$src"/*.h; do
  name=$(basename "$f"); name=${name%.*}
  if [ -z "${layer[$name]+x}" ]; then
    echo "layering: $f is in no layer (add it to tests/layering.sh and docs/design.md)"
    fail=1; continue
  fi
  if ! grep -q "src/$(basename "$f")\|src/$name\.\[ch\]\|src/$name\.c\|src/$name\.h" "$design"; then
    echo "layering: $(basename "$f") is missing from the file map of docs/design.md"
    fail=1
  fi
  own=${module[$name]:-$name}
  while read -r inc; do
    dep=${inc%.h}
    [ "$dep" = "$name" ] || [ "$dep" = "$own" ] && continue
    [ -z "${layer[$dep]+x}" ] && continue # public headers (include/)
    if [ "${layer[$dep]}" -ge "${layer[$name]}" ]; then
      echo "layering: $(basename "$f") (layer ${layer[$name]}) includes $inc (layer ${layer[$dep]})"
      fail=1
    fi
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
[ $fail = 0 ] && echo "layering: ok ($(ls "$src"/*.[ch] | wc -l) files)"
exit $fail
