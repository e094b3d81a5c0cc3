"""pmreport - the modules of scripts/poolmalloc-report (stdlib only)."""
