/* dlopen test, host side: a C program that does not link libstdc++, loads
 * the C++ plugin given as argv[1] with dlopen(), calls plugin_run() (which
 * uses new/delete) a few times and unloads it.  Run under LD_PRELOAD with
 * LD_DEBUG=bindings; run_dlopen.sh checks where the operators were bound. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PLUGIN.so\n", argv[0]);
        return 2;
    }
    /* Allocate something before the plugin exists. */
    char *before = malloc(1000);
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen failed: %s\n", dlerror());
        return 1;
    }
    int (*run)(void) = (int (*)(void))dlsym(h, "plugin_run");
    if (!run) {
        fprintf(stderr, "dlsym failed: %s\n", dlerror());
        return 1;
    }
    int errors = 0;
    for (int i = 0; i < 3; i++)
        errors += run();
    if (dlclose(h) != 0) {
        fprintf(stderr, "dlclose failed: %s\n", dlerror());
        return 1;
    }
    free(before);
    printf("plugin_run: %s\n", errors ? "errors" : "ok");
    return errors ? 1 : 0;
}
