#!/bin/bash
# Real-program tests: runs an allocation-heavy workload of a real program
# (python3 with pymalloc and with PYTHONMALLOC=malloc, node, sqlite3, perl,
# gcc -O2 on a generated 2000-function file, git, make -j2 on a generated
# 20-file project, sort/awk pipelines, node worker_threads and
# child_process, git gc --aggressive/grep/fsck on a 441-commit repository,
# jq filters over 3 MB of JSON, multithreaded xz, a bash script forking about
# 1900 processes, a part of CPython's test suite with pymalloc and with
# PYTHONMALLOC=malloc) once without and once with LD_PRELOAD=PRELOAD.
# stdout and the exit status must be the same (and the exit status 0),
# generated artifacts (object files, binaries, xz output) must be
# byte-identical, and the preloaded run must show that the library was
# interposed (POOLMALLOC_VERBOSE=1 banner on stderr; for the workloads that
# start children, a minimum number of banners, one per exec'd process).
# Exits 77 (skipped) if the program is not installed.  redis has its own
# script, run_real_redis.sh.
#
# usage: run_real.sh NAME PRELOAD WORKDIR [SECONDS]
#   NAME: python3 python3-malloc node sqlite3 perl gcc git make sortawk
#         node-workers git-gc jq xz bash-fork python3-testsuite
#         python3-testsuite-malloc
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
min_banners=0
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
node-workers)
    pm_need node
    cat >workload_mt.js <<'EOF'
'use strict';
// worker_threads: 6 workers allocate Buffers and objects, transfer
// ArrayBuffers back (allocated in one thread, freed in another), share a
// SharedArrayBuffer; child_process: node children and /bin/echo.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const crypto = require('crypto');
const cp = require('child_process');

function work(id) {
  const h = crypto.createHash('sha256');
  let keep = [];
  for (let i = 0; i < 10000; i++) {
    const b = Buffer.alloc(((i * 131 + id * 17) % 8192) + 8, (i + id) & 0xff);
    b.writeUInt32LE(i, 0);
    keep.push(b);
    if (keep.length > 500) h.update(keep.splice((i * 7) % keep.length, 1)[0]);
  }
  const objs = new Map();
  for (let i = 0; i < 30000; i++) {
    objs.set('w' + id + ':' + i, { i, s: 'v'.repeat(i % 64), a: [i, id, i ^ id] });
    if (i % 3 === 0) objs.delete('w' + id + ':' + (i >> 1));
  }
  let sum = 0;
  for (const v of objs.values()) sum += v.a[2] + v.s.length;
  const json = JSON.stringify(Array.from(objs.values()).slice(0, 5000));
  h.update(json);
  return { id, digest: h.digest('hex'), size: objs.size, sum, json: json.length };
}

if (!isMainThread) {
  const { id, shared } = workerData;
  const res = work(id);
  // Transfer freshly allocated ArrayBuffers to the main thread.
  const bufs = [];
  for (let k = 0; k < 20; k++) {
    const ab = new ArrayBuffer(4096 * (k + 1) + id);
    new Uint8Array(ab).fill((k + id) & 0xff);
    bufs.push(ab);
  }
  const counts = new Int32Array(shared);
  for (let k = 0; k < 10000; k++) Atomics.add(counts, k % counts.length, 1);
  parentPort.postMessage({ res, bufs }, bufs);
  // A second round of messages: structured clones of nested objects.
  for (let r = 0; r < 50; r++) {
    parentPort.postMessage({ round: r, payload: Array.from({ length: 200 }, (_, j) => ({ j, t: 'x'.repeat((j + r) % 50) })) });
  }
  parentPort.postMessage({ done: true });
} else if (process.argv[2] === 'child') {
  const id = Number(process.argv[3]);
  const r = work(100 + id);
  process.stdout.write(JSON.stringify(r) + '\n');
} else {
  const NW = 4;
  const shared = new SharedArrayBuffer(4 * 64);
  const results = new Array(NW);
  let finished = 0;
  const run = () => new Promise((resolve, reject) => {
    for (let id = 0; id < NW; id++) {
      const w = new Worker(__filename, { workerData: { id, shared } });
      let rounds = 0, bytes = 0;
      w.on('message', (m) => {
        if (m.res) {
          for (const ab of m.bufs) bytes += new Uint8Array(ab).reduce((s, x) => s + x, 0) + ab.byteLength;
          results[id] = m.res;
        } else if (m.payload) {
          rounds += m.payload.reduce((s, o) => s + o.t.length + o.j, 0);
        } else if (m.done) {
          results[id].rounds = rounds;
          results[id].bytes = bytes;
        }
      });
      w.on('error', reject);
      w.on('exit', (code) => {
        if (code !== 0) reject(new Error('worker ' + id + ' exit ' + code));
        if (++finished === NW) resolve();
      });
    }
  });
  run().then(() => {
    for (const r of results) console.log('worker', JSON.stringify(r));
    const counts = new Int32Array(shared);
    console.log('atomics', counts.reduce((s, x) => s + x, 0));
    // child_process: spawnSync, exec, execFile, and async spawn of node children.
    const out = cp.execFileSync('/bin/echo', ['hello', 'from', 'echo']).toString();
    console.log('echo', out.trim());
    const sh = cp.execSync('/bin/echo a; /bin/echo b | tr a-z A-Z', { shell: '/bin/sh' }).toString();
    console.log('exec', JSON.stringify(sh));
    const kids = [];
    for (let c = 0; c < 3; c++) {
      kids.push(new Promise((resolve, reject) => {
        const ch = cp.spawn(process.execPath, [__filename, 'child', String(c)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let data = '';
        ch.stdout.on('data', (d) => { data += d; });
        ch.on('error', reject);
        ch.on('close', (code) => (code === 0 ? resolve(data.trim()) : reject(new Error('child ' + c + ' exit ' + code))));
      }));
    }
    return Promise.all(kids).then((outs) => {
      outs.forEach((o, c) => console.log('child', c, o));
      const r = cp.spawnSync(process.execPath, ['-e', 'let a=[];for(let i=0;i<100000;i++)a.push({i});console.log(a.length)']);
      console.log('spawnSync', r.status, r.stdout.toString().trim());
      const echoes = [];
      for (let k = 0; k < 20; k++) echoes.push(cp.execFileSync('/bin/echo', ['n' + k]).toString().trim());
      console.log('echoes', echoes.join(','));
    });
  }).catch((e) => { console.error('FAILED', e); process.exit(1); });
}
EOF
    driver='node workload_mt.js'
    # main node + 3 node children + spawnSync node + 21 /bin/echo (+ sh, tr)
    min_banners=26
    ;;
git-gc)
    pm_need git awk md5sum
    cat >workload.sh <<'EOF'
set -e
export HOME="$PWD/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export TZ=UTC LC_ALL=C
mkdir -p home
git init -q -b main repo
cd repo
git config gc.auto 0
git config pack.threads 1
git config core.bigFileThreshold 512m
# 400 commits on main and a 40-commit branch (forked at commit 300, merged
# back at the end), written with fast-import: 60 files of 150 lines on main,
# each commit rewrites 3 files.  With pack.threads=1 the pack written by
# gc --aggressive is deterministic, so its checksum is compared.
awk 'BEGIN {
    nf = 60; nl = 150
    for (c = 1; c <= 440; c++) {
        if (c == 401) { print "reset refs/heads/topic"; print "from :300" }
        br = (c > 400) ? "topic" : "main"
        printf "commit refs/heads/%s\nmark :%d\n", br, c
        printf "author Poolmalloc Test <test@example.com> %d +0000\n", 1577836800 + c * 3600
        printf "committer Poolmalloc Test <test@example.com> %d +0000\n", 1577836800 + c * 3600
        msg = sprintf("commit %d on %s: update files", c, br)
        printf "data %d\n%s\n", length(msg), msg
        for (k = 0; k < 3; k++) {
            f = (c * 7 + k * 13) % nf
            body = ""
            for (l = 0; l < nl; l++) {
                v = (l * 31 + f * 7) % 97
                tag = ((l + c) % 17 == k) ? sprintf(" rev%d", c) : ""
                body = body sprintf("file %d line %d value %d%s\n", f, l, v, tag)
            }
            if (c % 50 == k) body = body "TODO: allocator marker " c "\n"
            if (br == "topic") printf "M 100644 inline topic/notes_%02d.txt\n", f
            else printf "M 100644 inline dir%d/file_%02d.txt\n", f % 6, f
            printf "data %d\n%s", length(body), body
        }
        print ""
    }
}' | git fast-import --quiet
git reset -q --hard main
export GIT_AUTHOR_DATE="2021-01-01T00:00:00+0000" GIT_COMMITTER_DATE="2021-01-01T00:00:00+0000"
git -c user.name=T -c user.email=t@example.com merge -q --no-ff --no-edit -m "merge topic" topic
git rev-list --count HEAD
git gc --aggressive --quiet
git count-objects -v | grep -E '^(count|in-pack|packs|prune-packable|garbage):'
(cd .git/objects/pack && md5sum pack-*.pack pack-*.idx)
git verify-pack -v .git/objects/pack/pack-*.idx | awk '$2 == "commit" || $2 == "tree" || $2 == "blob" || $2 == "tag" { n[$2]++; if (NF > 5) d++ } END { for (t in n) print t, n[t]; print "deltas", d + 0 }' | sort
git fsck --full --strict --no-progress
git fsck --connectivity-only --unreachable --no-progress | wc -l
git grep -n -e 'allocator marker' HEAD -- 'dir*' | head -n 20
git grep -c 'rev3[0-9][0-9]$' HEAD | sort | md5sum
git grep -l -E 'value (13|42) rev[0-9]+' $(git rev-list -n 5 main~50) | sort | md5sum
git log --format='%H %s' -n 3
git rev-list --all --objects | md5sum
git diff --shortstat main~200 main
EOF
    driver='bash workload.sh'
    ;;
jq)
    pm_need jq awk md5sum
    cat >workload.sh <<'EOF'
set -e
export LC_ALL=C
# ~3 MB of JSON: 12000 records with nested objects, arrays and strings.
awk 'BEGIN {
    x = 7
    printf "["
    for (i = 0; i < 12000; i++) {
        x = (x * 69069 + 1) % 4294967296
        printf "%s{\"id\":%d,\"name\":\"user-%05d-%s\",\"group\":\"g%02d\",\"score\":%d.%02d,", (i ? "," : ""), i, i, substr("abcdefghijklmnopqrstuvwxyz", 1 + x % 20, 1 + x % 7), x % 37, x % 1000, x % 100
        printf "\"tags\":["
        for (t = 0; t < x % 6; t++) printf "%s\"t%d\"", (t ? "," : ""), (x + t * 7) % 50
        printf "],\"addr\":{\"city\":\"c%03d\",\"zip\":\"%05d\",\"geo\":[%d,%d]},", x % 211, x % 99991, x % 180, x % 90
        printf "\"history\":["
        for (h = 0; h < i % 5; h++) printf "%s{\"t\":%d,\"v\":\"%s\"}", (h ? "," : ""), 1600000000 + i * 10 + h, substr("lorem ipsum dolor sit amet consectetur", 1 + h * 3, 10 + x % 20)
        printf "]}"
    }
    printf "]\n"
}' >data.json
wc -c <data.json
jq -c 'group_by(.group) | map({group: .[0].group, n: length, avg: (map(.score) | add / length * 1000 | floor), tags: (map(.tags[]) | unique | length)})' data.json | md5sum
jq -c '[.[] | select(.score > 500 and (.tags | index("t7")))] | sort_by(.name) | .[0:3] | map(.id)' data.json
jq -c 'map(.addr.city) | group_by(.) | map([.[0], length]) | sort_by(-.[1], .[0]) | .[0:5]' data.json
jq -c 'reduce .[] as $r ({}; .[$r.group] += [$r.id]) | to_entries | map(.key + ":" + (.value | length | tostring)) | join(",")' data.json | md5sum
jq -c '[.[] | .history[] | .v | ascii_upcase | split(" ") | length] | add' data.json
jq -c 'map(tojson) | map(fromjson) | map(.name |= ascii_downcase + "-x") | .[11999].name' data.json
jq -c '[paths(type == "number")] | length' data.json
jq -S . data.json | md5sum
jq -c '.[] | {id, city: .addr.city, ntags: (.tags | length)}' data.json | sort -t: -k4 | md5sum
jq -n --slurpfile d data.json '$d[0] | [limit(5; .[] | select(.id % 2500 == 0)) | .name]'
jq -r '.[] | [.id, .group, .name, (.tags | join(";"))] | @csv' data.json | md5sum
EOF
    driver='bash workload.sh'
    ;;
xz)
    pm_need xz awk md5sum cmp
    cat >workload.sh <<'EOF'
set -e
export LC_ALL=C
# ~5 MB of text (compressible) and pseudo-random bytes; -T2 with small blocks
# compresses blocks on 2 threads, and the output is the same every time.
awk 'BEGIN {
    x = 12345
    for (i = 0; i < 90000; i++) {
        x = (x * 69069 + 1) % 4294967296
        printf "%08d %s %d %s\n", i, substr("the quick brown fox jumps over the lazy dog", 1 + x % 30), x, (x % 7 == 0) ? sprintf("%x%x%x", x, x * 3 % 65521, x % 977) : "-"
    }
}' >data
awk 'BEGIN { x = 1; for (i = 0; i < 200000; i++) { x = (x * 1103515245 + 12345) % 2147483648; printf "%c%c", 33 + x % 90, 33 + int(x / 90) % 90 } }' >>data
wc -c <data
md5sum <data
xz -T2 -6 --block-size=1MiB -k -c data >data.6.xz
md5sum <data.6.xz
xz -T2 -7 --block-size=2MiB -k -c data >data.7.xz
md5sum <data.7.xz
xz -T2 -3e --block-size=1MiB -k -c data >data.3e.xz
md5sum <data.3e.xz
xz -T2 --format=xz --check=sha256 -2 --block-size=512KiB -c data >data.2.xz
md5sum <data.2.xz
xz -l --robot data.6.xz | awk -F'\t' '$1 == "totals" { print "blocks", $3, "compressed", $4, "uncompressed", $5 }'
for f in data.6.xz data.7.xz data.3e.xz data.2.xz; do
    xz -T2 -t "$f"
    xz -T2 -d -c "$f" | md5sum
done
cp data.6.xz round.xz
xz -T2 -d -f round.xz
cmp round data && echo "round trip ok"
EOF
    driver='bash workload.sh'
    artifacts="data.6.xz data.7.xz data.3e.xz data.2.xz"
    ;;
bash-fork)
    pm_need bash tr cut sort head awk md5sum
    cat >workload.sh <<'EOF'
set -e
export LC_ALL=C
# 1200 command substitutions (forked subshells; every 8th also runs a
# pipeline of two exec'd programs, and each exec'd child loads the preload
# again), 50 subshells and pipelines with sort/head, 40 background jobs:
# about 1900 processes, all inheriting LD_PRELOAD.
sum=0 acc=""
for i in $(seq 1 1200); do
    v=$(echo "$((i * 7 % 1000))")
    sum=$((sum + v))
    if [ $((i % 8)) -eq 0 ]; then
        w=$(printf '%s-%d\n' "item" "$i" | tr 'a-z' 'A-Z' | cut -d- -f2)
        acc="$acc$w,"
    fi
done
echo "subst sum $sum acc ${#acc} $(printf '%s' "$acc" | md5sum)"
n=0
for i in $(seq 1 50); do
    (x=$((i * i)); exit $((x % 2))) && n=$((n + 1)) || true
    { echo "$i"; echo "$((i + 1))"; } | sort -rn | head -n 1 >>max.txt
done
echo "subshells even $n, max $(md5sum <max.txt)"
for i in $(seq 1 40); do
    ( echo "job $i $(echo $((i * 3)))" >"job.$i" ) &
    if [ $((i % 10)) -eq 0 ]; then wait; fi
done
wait
cat job.* | sort -t' ' -k2,2n | md5sum
ls job.* | wc -l
big=$(for i in $(seq 1 20000); do echo "line $i"; done | awk '{ s += length($0) } END { print s }')
echo "big $big"
declare -A map
for i in $(seq 1 20000); do printf -v 'map[k'"$i"']' 'v%05d' "$i"; done
s=""
for k in "${!map[@]}"; do s+="${map[$k]}"; done
echo "map ${#map[@]} ${map[k12345]} ${#s}"
EOF
    driver='bash workload.sh'
    # tr and cut in 150 pipelines, sort and head in 50: 400 exec'd children
    min_banners=400
    ;;
python3-testsuite | python3-testsuite-malloc)
    # CPython's own regression tests (package libpython3.11-testsuite), run
    # with the Debian interpreter (the python3 on PATH may be another build).
    pm_need /usr/bin/python3 sed grep
    /usr/bin/python3 -c 'import test.libregrtest, test.test_dict' 2>/dev/null ||
        pm_skip "CPython test suite not importable by /usr/bin/python3 (package libpython3.11-testsuite)"
    pymalloc=""
    [ "$name" = python3-testsuite-malloc ] && pymalloc="PYTHONMALLOC=malloc "
    cat >workload.sh <<'EOF'
# Some tests assert that a child python writes nothing on stderr, so the
# POOLMALLOC_VERBOSE=1 banner comes from a separate python3 run with the same
# environment, and the suite runs without it.
/usr/bin/python3 -c 'import test.support' || exit 1
unset POOLMALLOC_VERBOSE
/usr/bin/python3 -m test -j1 --timeout 120 \
    test_dict test_list test_tuple test_set test_unicode test_bytes \
    test_memoryview test_array test_json test_deque test_collections \
    test_re test_gc test_thread >suite.log 2>&1
rc=$?
# Per-test result lines without the clock and load average prefix and the
# durations, and the summary without the total duration.
sed -n -E -e 's/^[0-9:]+ load avg: [0-9.]+ \[[ 0-9/]+\] (test_[a-z_0-9.]+ .*)$/\1/p' \
    -e '/^== Tests result/,$p' suite.log |
    sed -E -e 's/ \([0-9.]+ (ms|sec)\)$//; s/ \([0-9]+ min [0-9]+ sec\)$//' |
    grep -v -E '^(Total duration|$)'
[ "$rc" -eq 0 ] || tail -n 80 suite.log >&2
exit "$rc"
EOF
    driver="${pymalloc}bash workload.sh"
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
if [ "$min_banners" -gt 0 ] && pm_is_poolmalloc "$preload"; then
    banners=$(grep -c '^poolmalloc' "$work/preload.err")
    if [ "$banners" -lt "$min_banners" ]; then
        pm_fail "$name: $banners poolmalloc banners on stderr, expected at least $min_banners (one per exec'd child): was LD_PRELOAD passed on to the children?"
    fi
    echo "preload banners: $banners (at least $min_banners expected)"
fi
echo "PASS: $name: identical stdout ($(wc -l <"$work/plain.out") lines)${artifacts:+, identical $artifacts}, exit 0"
pm_cleanup "$work"
exit 0
