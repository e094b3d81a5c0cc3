// buffers.js - a Buffer-heavy node script for examples/preload-python-node.md.
//
//   node examples/buffers.js [slices|copies] [ROUNDS]     (default: slices 200)
//
// Buffer.allocUnsafe(n) for n < 4 KiB (Buffer.poolSize / 2) does not allocate:
// it hands out a slice of a shared 8 KiB pool, and node allocates a new
// 8 KiB pool (one malloc of 8,192 bytes) when the current one is used up.
// A slice keeps its whole pool alive. Larger Buffers get their own malloc.
//
// Each round makes 2,000 small messages (16..1,040 bytes) with allocUnsafe,
// keeps 1 in 50 and drops the rest. Every 10th round also joins 64 of them
// into a 64 KiB frame with Buffer.concat and drops it.
//   slices: keeps the slices themselves: every kept slice pins an 8 KiB pool.
//   copies: keeps a copy made with Buffer.allocUnsafeSlow (its own malloc of
//           exactly n bytes), so the 8 KiB pools can all be freed.
// Under poolmalloc with POOLMALLOC_STATS_SIGNAL set (poolmalloc --signal USR2)
// the script sends itself that signal at the end, while everything it kept is
// still alive: node frees its ArrayBuffers when it exits, so the exit report
// alone would not show what was kept.
'use strict';

const mode = process.argv[2] || 'slices';
const rounds = Number(process.argv[3] || 200);
if (mode !== 'slices' && mode !== 'copies') {
  console.error('usage: node buffers.js [slices|copies] [ROUNDS]');
  process.exit(2);
}

const kept = [];
let made = 0, bytes = 0;
for (let r = 0; r < rounds; r++) {
  const parts = [];
  for (let i = 0; i < 2000; i++) {
    const n = 16 + ((i * 37 + r) % 1025);
    const b = Buffer.allocUnsafe(n);
    b.fill(i & 0xff);
    made++;
    bytes += n;
    if (i % 50 === 0) {
      if (mode === 'slices') {
        kept.push(b);
      } else {
        const c = Buffer.allocUnsafeSlow(n);
        b.copy(c);
        kept.push(c);
      }
    }
    if (r % 10 === 0 && i < 64) parts.push(b);
  }
  if (r % 10 === 0) bytes += Buffer.concat(parts, 64 * 1024).length;
}
// let the garbage collector free the dropped pools before measuring
if (global.gc) global.gc();
const pools = new Set(kept.map((b) => b.buffer)).size;
const keptBytes = kept.reduce((s, b) => s + b.length, 0);
const mu = process.memoryUsage();
const mib = (x) => (x / 1048576).toFixed(1) + ' MiB';
const sig = process.env.POOLMALLOC_STATS_SIGNAL;
if (sig && sig !== '0') {
  process.kill(process.pid, /^\d+$/.test(sig) ? Number(sig) : (sig.startsWith('SIG') ? sig : 'SIG' + sig));
}
console.log(`${mode}: ${made} buffers (${mib(bytes)}); kept ${kept.length} (${mib(keptBytes)})` +
  ` in ${pools} ArrayBuffers; arrayBuffers ${mib(mu.arrayBuffers)}, rss ${mib(mu.rss)}`);
