/* fakever.c - a stand-in library for the wrapper's --version test: it only
 * exports poolmalloc_version(), returning a version the real library never
 * has, so the test can tell a version read from the library from one the
 * wrapper made up. Built as libpoolmalloc.so.9.8.7 in its own directory. */
__attribute__((visibility("default"))) const char *poolmalloc_version(void) {
  return "9.8.7";
}
