#!/usr/bin/env bash
# The README's option table must be what the option table generates.
# usage: readme_options.sh README.md path/to/pm-options
set -eu
want=$("$2" --markdown)
got=$(sed -n '/<!-- options-table-begin -->/,/<!-- options-table-end -->/p' "$1" | sed '1d;$d')
if [ "$want" != "$got" ]; then
  echo "README.md option table is stale; regenerate it with: pm-options --markdown" >&2
  diff <(echo "$want") <(echo "$got") >&2 || true
  exit 1
fi
# docs/report.md documents every option as a field of the JSON "options"
report_md=$(dirname "$1")/docs/report.md
for name in $("$2" | awk '{print $1}' | sed -n 's/^POOLMALLOC_//p'); do
  grep -q "^| \`$name\` |" "$report_md" || {
    echo "docs/report.md's options table lacks $name" >&2
    exit 1
  }
done
