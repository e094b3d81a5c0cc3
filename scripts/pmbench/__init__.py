"""pmbench - the package behind scripts/bench (poolmalloc's benchmark suite).

Modules, in the order a run uses them:

- cli: command line, selection of workloads and allocators, main()
- workloads: the Workload record, the tests/bench programs, real programs
- startup: many short processes (/bin/true loop, bench_tiny loop, configure)
- redis: redis-server under the allocator, driven by redis-benchmark
- frag: the fragmentation family (scripts/bench --frag): RSS over live bytes
- peers: the allocator columns (glibc, jemalloc, mimalloc, tcmalloc, poolmalloc*)
- runner: running one workload under one allocator (time, peak RSS), interleaving
- tables: the Markdown report
- chart: results.png (matplotlib, or gnuplot)
- common: paths, constants, logging, apt-get

scripts/bench puts its own directory on sys.path and calls cli.main().
"""
