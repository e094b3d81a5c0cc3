/* unwind_plugin.c - a wrapper in a module of its own, for test_unwind.c's
 * module-replacement test. Built twice, with frames of two sizes
 * (PLUGIN_FRAME 0x18 and 0x38) and code of the same length, so the second
 * module, loaded where the first was unloaded, has its call to the probe
 * at the same address under another rule. Written in assembly so the
 * compiler cannot lay the two out differently:
 *
 *   void *plugin_wrap(void *(*probe)(int), int own, uintptr_t *expected)
 *
 * stores its own return address in *expected and returns probe(own). */
#ifndef PLUGIN_FRAME
#error "PLUGIN_FRAME must be defined"
#endif
#if !defined(__x86_64__)
#error "x86-64 only"
#endif

#define STR2(x) #x
#define STR(x) STR2(x)

__asm__(
    ".text\n"
    ".globl plugin_wrap\n"
    ".type plugin_wrap, @function\n"
    "plugin_wrap:\n"
    ".cfi_startproc\n"
    "  sub $" STR(
        PLUGIN_FRAME) ", %rsp\n"
                      "  .cfi_def_cfa_offset " STR(
                          PLUGIN_FRAME) " + 8\n"
                                        "  mov " STR(
                                            PLUGIN_FRAME) "(%rsp), %rcx\n"
                                                          "  mov %rcx, (%rdx)\n"
                                                          "  mov %rdi, %rax\n"
                                                          "  mov %esi, %edi\n"
                                                          "  call *%rax\n"
                                                          "  add $" STR(
                                                              PLUGIN_FRAME) ", %rsp\n"
                                                                            "  "
                                                                            ".cfi_def_"
                                                                            "cfa_offset "
                                                                            "8\n"
                                                                            "  ret\n"
                                                                            ".cfi_"
                                                                            "endproc\n"
                                                                            ".size "
                                                                            "plugin_wrap,"
                                                                            " .-plugin_"
                                                                            "wrap\n");
