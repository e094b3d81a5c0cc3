#!/bin/bash
# Real-program tests: runs an allocation-heavy workload of a real program
# (python3 with pymalloc and with PYTHONMALLOC=malloc, node, sqlite3, perl,
# gcc -O2 on a generated 2000-function file, git, make -j2 on a generated
# 20-file project, sort/awk pipelines) once without and once with
# LD_PRELOAD=PRELOAD.  stdout and the exit status must be the same (and the
# exit status 0), generated artifacts (object files, binaries) must be
# byte-identical, and the preloaded run must show that the library was
# interposed (POOLMALLOC_VERBOSE=1 banner on stderr).  Exits 77 (skipped) if
# the program is not installed.
#
# usage: run_real.sh NAME PRELOAD WORKDIR [SECONDS]
#   NAME: python3 python3-malloc node sqlite3 perl gcc git make sortawk
set -u
. "$(dirname "$0")/lib.sh"

[ $# -ge 3 ] || pm_fail "usage: $0 NAME PRELOAD WORKDIR [SECONDS]"
name=$1 preload=$2 work=$3 secs=${4:-300}
pm_check_preload_file "$preload"
pm_workdir "$work"
cd "$work" || pm_fail "cannot enter $work"

# The input files of the workload are written into $work, then copied into
# $work/plain and $work/preload, where the workload (driver.sh) runs.  It
# prints only things that depend neither on the directory nor on the
# allocator.
artifacts=""
case "$name" in
python3 | python3-malloc)
    pm_need python3
    cat >workload.py <<'EOF'
import collections, gc, hashlib, json

h = hashlib.sha256()
d = {}
for i in range(200000):
    k = "key%07d-%s" % (i, "x" * (i % 23))
    d[k] = [i, str(i) * (i % 5), {"n": i, "s": k[::-1]}]
for i in range(0, 200000, 3):
    del d["key%07d-%s" % (i, "x" * (i % 23))]
items = sorted(d.items(), key=lambda kv: (len(kv[0]), kv[0]))
for k, v in items[::97]:
    h.update(k.encode())
    h.update(json.dumps(v, sort_keys=True).encode())
print("dict entries", len(d))
print("dict digest", h.hexdigest())

parts = [("%x" % (i * 2654435761 % 2**32)) * (1 + i % 7) for i in range(100000)]
s = "|".join(parts)
print("joined length", len(s))
words = s.split("|")
c = collections.Counter(w[:3] for w in words)
print("most common", c.most_common(5))
print("upper digest", hashlib.md5(s.upper().replace("A", "aa").encode()).hexdigest())

big = [bytearray(i % 5000) for i in range(20000)]
for i, b in enumerate(big):
    if b:
        b[-1] = i % 256
print("bytearrays", sum(len(b) for b in big), sum(b[-1] for b in big if b))
del big

t = [(i * 7919 % 100003, str(i)) for i in range(300000)]
t.sort()
print("sorted", t[:3], t[-1])

blob = json.dumps({str(i): list(range(i % 50)) for i in range(20000)})
back = json.loads(blob)
print("json", len(blob), sum(len(v) for v in back.values()))

class Node:
    __slots__ = ("next", "data")

for r in range(5):
    nodes = [Node() for _ in range(50000)]
    for i, n in enumerate(nodes):
        n.next = nodes[(i + 1) % len(nodes)]
        n.data = "d" * (i % 100)
    del nodes
    gc.collect()
sets = [set(range(i, i + 100)) for i in range(0, 20000, 7)]
print("sets", sum(len(x) for x in sets), len(set().union(*sets)))
print("done")
EOF
    if [ "$name" = python3-malloc ]; then
        driver='PYTHONMALLOC=malloc python3 workload.py'
    else
        driver='python3 workload.py'
    fi
    ;;
node)
    pm_need node
    cat >workload.js <<'EOF'
'use strict';
const crypto = require('crypto');

// Buffers: many sizes, some kept, concatenated, converted.
const h = crypto.createHash('sha256');
let kept = [];
for (let i = 0; i < 30000; i++) {
  const b = Buffer.alloc((i * 37) % 65536 + 4, i & 0xff);
  b.writeUInt32LE(i, 0);
  kept.push(b);
  if (kept.length > 2000) h.update(kept.shift());
}
const big = Buffer.concat(kept);
h.update(big);
console.log('buffers', big.length, h.digest('hex'));
kept = null;

const u = Buffer.allocUnsafe(1 << 20);
u.fill('abc');
const b64 = u.toString('base64');
const back = Buffer.from(b64, 'base64');
console.log('base64', b64.length, back.equals(u));

const slices = [];
for (let i = 0; i < 100000; i++) slices.push(Buffer.from('item-' + i + '-' + 'y'.repeat(i % 40)));
console.log('slices', Buffer.concat(slices).length);

// Objects: maps, arrays, JSON round trips, sorting.
const m = new Map();
for (let i = 0; i < 200000; i++) {
  m.set('k' + i, { id: i, name: 'n' + (i * 7919 % 100003), tags: [i % 3, i % 5, 'x'.repeat(i % 10)] });
}
for (let i = 0; i < 200000; i += 4) m.delete('k' + i);
const arr = Array.from(m.values()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id - b.id));
console.log('objects', m.size, arr[0].id, arr[arr.length - 1].id);
const json = JSON.stringify(arr.slice(0, 50000));
const parsed = JSON.parse(json);
console.log('json', json.length, parsed.length, crypto.createHash('md5').update(json).digest('hex'));

const f = new Float64Array(1 << 20);
for (let i = 0; i < f.length; i++) f[i] = Math.sqrt(i);
console.log('typed', f.reduce((s, x) => s + x, 0).toFixed(3));

let s = '';
for (let i = 0; i < 100000; i++) s += String.fromCharCode(97 + (i % 26));
console.log('string', s.length, s.split('a').length, s.toUpperCase().slice(0, 30));
EOF
    driver='node workload.js'
    ;;
sqlite3)
    pm_need sqlite3
    cat >workload.sql <<'EOF'
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL, data BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
INSERT INTO t SELECT x, x % 97,
  printf('name-%08d-%s', x, substr('abcdefghijklmnopqrstuvwxyz', 1 + x % 26)),
  (x * 7919 % 10007) / 7.0, zeroblob(x % 300) FROM c;
CREATE INDEX t_grp_val ON t(grp, val);
CREATE INDEX t_name ON t(name);
CREATE TABLE g(grp INTEGER PRIMARY KEY, label TEXT);
WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 96)
INSERT INTO g SELECT x, 'group-' || printf('%03d', x) FROM c;
SELECT g.label, count(*), round(sum(t.val), 3), max(length(t.name))
  FROM t JOIN g USING (grp) GROUP BY g.label ORDER BY g.label LIMIT 20;
SELECT count(*) FROM t a JOIN t b ON a.grp = b.grp AND b.id = a.id + 97 WHERE a.val > 500;
SELECT grp, count(DISTINCT substr(name, -1)) FROM t WHERE val BETWEEN 100 AND 200
  GROUP BY grp HAVING count(*) > 10 ORDER BY grp LIMIT 10;
UPDATE t SET name = name || '/' || name WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), sum(length(name)), total(length(data)) FROM t;
SELECT grp, length(group_concat(id, ',')) FROM (SELECT grp, id FROM t WHERE id < 20000 ORDER BY id)
  GROUP BY grp ORDER BY grp LIMIT 5;
SELECT name FROM t WHERE name LIKE 'name-0001234%' ORDER BY name;
CREATE TABLE w AS SELECT grp, name, row_number() OVER (PARTITION BY grp ORDER BY val DESC, id) AS rn FROM t;
SELECT grp, name FROM w WHERE rn = 1 ORDER BY grp LIMIT 5;
VACUUM;
PRAGMA integrity_check;
EOF
    driver='sqlite3 :memory: < workload.sql'
    ;;
perl)
    pm_need perl
    perl -MDigest::MD5 -e 1 2>/dev/null || pm_skip "perl module Digest::MD5 is not installed (package perl)"
    cat >workload.pl <<'EOF'
use strict;
use warnings;
use Digest::MD5;

my %h;
for my $i (0 .. 299_999) {
    $h{"k$i-" . ("z" x ($i % 17))} = [$i, "v" x ($i % 31), {n => $i}];
}
delete $h{"k$_-" . ("z" x ($_ % 17))} for grep { $_ % 3 == 0 } 0 .. 299_999;
my $ctx = Digest::MD5->new;
for my $k (sort keys %h) {
    $ctx->add($k, $h{$k}[0], $h{$k}[1], $h{$k}[2]{n});
}
print "keys ", scalar(keys %h), "\n";
print "md5 ", $ctx->hexdigest, "\n";

my %count;
my $text = join(" ", map { ("w" . ($_ * 7 % 1000)) x ($_ % 4 + 1) } 1 .. 100_000);
$count{$_}++ for split / /, $text;
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 4];
print "top @top\n";

my %hoh;
for my $i (1 .. 50_000) {
    $hoh{$i % 500}{$i} = join(",", 1 .. ($i % 20));
}
my $tot = 0;
for my $g (keys %hoh) {
    $tot += length($hoh{$g}{$_}) for keys %{$hoh{$g}};
}
print "hoh $tot\n";

my $s = "";
$s .= sprintf("%05d:%s;", $_, "x" x ($_ % 50)) for 1 .. 20_000;
my @m = ($s =~ /(\d+):x{49};/g);
print "matches ", scalar(@m), " length ", length($s), "\n";
my @sorted = sort { $a->[1] <=> $b->[1] || $a->[0] cmp $b->[0] }
    map { ["s$_", ($_ * 7919) % 10007] } 1 .. 100_000;
print "sorted $sorted[0][0] $sorted[-1][0]\n";
EOF
    driver='perl workload.pl'
    ;;
gcc)
    pm_need gcc awk md5sum
    # 2000 functions with loops, switches and inlinable helpers.
    cat >gen.awk <<'EOF'
BEGIN {
    print "struct acc { long a, b; int c[8]; };"
    print "static inline long mix(long x, int k) { return (x << (k % 13)) ^ (x >> 3) ^ k; }"
    for (i = 0; i < 2000; i++) {
        printf "long f%d(const int *v, int n, struct acc *s) {\n", i
        printf "  long r = %d;\n", i * 31 + 7
        printf "  for (int j = 0; j < n; j++) {\n"
        printf "    switch ((v[j] + %d) %% 6) {\n", i
        printf "    case 0: r += mix(v[j], %d); break;\n", i % 17
        printf "    case 1: r ^= (long)v[j] * %d; s->a += r; break;\n", i + 3
        printf "    case 2: s->c[j & 7] += v[j] >> %d; break;\n", i % 5
        printf "    case 3: r = r * 3 + s->c[(j + %d) & 7]; break;\n", i % 8
        printf "    case 4: if (r > %d) r -= v[j]; else r += s->b; break;\n", i * 13
        printf "    default: s->b ^= mix(r, j + %d); break;\n", i
        printf "    }\n  }\n"
        if (i > 0)
            printf "  if (n > 2 && r %% %d == 1) r += f%d(v + 1, n - 2, s);\n", (i % 7) + 2, i - 1
        printf "  return r + s->a;\n}\n"
    }
}
EOF
    driver='awk -f gen.awk > gen.c && gcc -O2 -c gen.c -o gen.o && md5sum gen.o && wc -l < gen.c'
    artifacts="gen.o"
    ;;
git)
    pm_need git awk md5sum
    cat >workload.sh <<'EOF'
set -e
export HOME="$PWD/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Poolmalloc Test" GIT_AUTHOR_EMAIL=test@example.com
export GIT_COMMITTER_NAME="Poolmalloc Test" GIT_COMMITTER_EMAIL=test@example.com
export TZ=UTC LC_ALL=C
mkdir -p home
set_date() {
    export GIT_AUTHOR_DATE="2020-01-$1T12:00:00+0000" GIT_COMMITTER_DATE="2020-01-$1T12:00:00+0000"
}
git init -q repo
cd repo
git config core.autocrlf false
git config gc.auto 0
git config pack.threads 1
git checkout -q -b main
for c in 01 02 03 04 05 06 07 08 09 10 11 12; do
    set_date "$c"
    for f in $(seq 1 40); do
        awk -v c="$c" -v f="$f" 'BEGIN {
            for (l = 0; l < 200; l++) {
                v = (l * 31 + f * 7) % 97
                if ((l + f) % 13 == (c + 0) % 13) v = v "-changed-in-" c
                print "file " f " line " l " value " v
            }
        }' >"file_$f.txt"
    done
    head -c $((c * 1000)) /dev/zero | tr '\0' 'b' >"blob_$c.bin"
    git add -A
    git commit -q -m "commit $c"
done
set_date 13
git checkout -q -b feature HEAD~3
echo "feature work" >feature.txt
git add feature.txt
git commit -q -m "feature"
git checkout -q main
set_date 14
git merge -q --no-edit -m "merge feature" feature
git tag -a -m "release" v1.0
git log --stat --format='%H %an <%ae> %ad %s' --date=iso
git gc --quiet
git count-objects -v | grep -E '^(count|in-pack|packs|garbage):'
git fsck --full --strict
git rev-list --all --objects | wc -l
git cat-file -p 'HEAD^{tree}' | head -n 5
git diff --stat HEAD~5 HEAD | tail -n 1
git blame --line-porcelain file_7.txt | grep -c '^author '
git archive --format=tar HEAD | md5sum
git describe --tags
EOF
    driver='bash workload.sh'
    ;;
make)
    pm_need make gcc awk
    cat >gen.sh <<'EOF'
set -e
mkdir -p src
: >src/mods.h
for i in $(seq -w 1 20); do
    echo "long mod$i(long x);" >>src/mods.h
    awk -v i="$i" 'BEGIN {
        printf "#include \"mods.h\"\n"
        printf "static long helper(long x, int k) { long r = x; for (int j = 0; j < 50; j++) r = r * 31 + (j ^ k); return r; }\n"
        printf "long mod%s(long x) {\n  long r = x;\n", i
        for (j = 0; j < 40; j++) printf "  r = helper(r + %d, %d) %% 1000003;\n", j, (i + 0) * j
        printf "  return r;\n}\n"
    }' >"src/mod$i.c"
done
{
    echo '#include <stdio.h>'
    echo '#include "mods.h"'
    echo 'int main(void) {'
    echo '  long t = 1;'
    for i in $(seq -w 1 20); do echo "  t = mod$i(t); printf(\"mod$i %ld\\n\", t);"; done
    echo '  return 0;'
    echo '}'
} >src/main.c
cat >Makefile <<'MK'
SRCS := $(sort $(wildcard src/*.c))
OBJS := $(SRCS:src/%.c=obj/%.o)
CFLAGS := -O2 -Wall
prog: $(OBJS)
	$(CC) -o $@ $(OBJS)
obj/%.o: src/%.c src/mods.h | obj
	$(CC) $(CFLAGS) -c $< -o $@
obj:
	mkdir -p obj
MK
make -j2 -s
./prog
make -q && echo "up to date"
md5sum obj/*.o | awk '{print $1}' | md5sum
EOF
    driver='bash gen.sh'
    artifacts="prog obj/mod01.o obj/mod20.o obj/main.o"
    ;;
sortawk)
    pm_need sort awk uniq cut md5sum
    cat >workload.sh <<'EOF'
set -e
export LC_ALL=C
awk 'BEGIN {
    x = 12345
    for (i = 0; i < 400000; i++) {
        x = (x * 69069 + 1) % 4294967296
        printf "%d,%s%d,%d,%s\n", x % 100000, substr("abcdefghij", x % 10 + 1, 3), x % 977, i, substr("lorem ipsum dolor sit amet", 1 + x % 20)
    }
}' >data.csv
sort -t, -k1,1n -k2,2 -k3,3n -S 32M --parallel=2 data.csv >sorted.csv
md5sum <sorted.csv
cut -d, -f2 data.csv | sort | uniq -c | sort -k1,1nr -k2,2 | head -n 5
awk -F, '{ s[$2] += $1; n[$2]++ } END { for (k in s) printf "%s %d %.3f\n", k, n[k], s[k] / n[k] }' data.csv | sort | md5sum
sort -u -t, -k2,2 data.csv | wc -l
awk -F, '{ w[$4] = w[$4] $2 " " } END { for (k in w) print k, length(w[k]) }' data.csv | sort -k2,2n -k1,1 | tail -n 3
sort -r -t, -k4,4 data.csv | awk -F, 'NR % 1000 == 0 { print NR, $2 }' | md5sum
tr 'a-z' 'A-Z' <data.csv | sort -t, -k2,2 -s | uniq -c -w 9 | sort -n | tail -n 2
EOF
    driver='bash workload.sh'
    ;;
*)
    pm_fail "unknown program '$name'"
    ;;
esac

inputs=$(find . -maxdepth 1 -type f)
for mode in plain preload; do
    mkdir -p "$work/$mode"
    # shellcheck disable=SC2086
    cp $inputs "$work/$mode/" || pm_fail "cannot copy the inputs"
    echo "$driver" >"$work/$mode/driver.sh"
done

export LC_ALL=C TZ=UTC PYTHONHASHSEED=0 PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0 PYTHONDONTWRITEBYTECODE=1
echo "== $name without preload: $driver"
(cd "$work/plain" && pm_run_plain "$secs" ../plain.out ../plain.err bash driver.sh)
rc_plain=$?
echo "== $name with LD_PRELOAD=$preload"
(cd "$work/preload" && pm_run_preloaded "$preload" "$secs" ../preload.out ../preload.err bash driver.sh)
rc_pre=$?

fail=0
if [ "$rc_plain" -ne 0 ]; then
    echo "FAIL: workload exits $rc_plain without the preload (broken test or environment)"
    pm_show "$work/plain.err" "stderr without preload"
    fail=1
fi
if [ "$rc_pre" -ne "$rc_plain" ]; then
    echo "FAIL: exit status $rc_pre with the preload, $rc_plain without"
    pm_show "$work/preload.err" "stderr with preload"
    fail=1
fi
if ! diff -u "$work/plain.out" "$work/preload.out" >"$work/diff.txt"; then
    echo "FAIL: stdout differs between glibc (-) and the preload (+):"
    head -n 60 "$work/diff.txt"
    fail=1
fi
for a in $artifacts; do
    if ! cmp "$work/plain/$a" "$work/preload/$a"; then
        echo "FAIL: artifact $a differs between the two runs"
        fail=1
    fi
done
if [ "$fail" -ne 0 ]; then
    echo "(work directory kept: $work)"
    exit 1
fi
pm_check_preload_stderr "$preload" "$work/preload.err" "$name"
echo "PASS: $name: identical stdout ($(wc -l <"$work/plain.out") lines)${artifacts:+, identical $artifacts}, exit 0"
pm_cleanup "$work"
exit 0
