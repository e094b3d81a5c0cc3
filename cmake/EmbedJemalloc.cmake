# Builds a private copy of Debian's libjemalloc_pic.a for embedding in
# libpoolmalloc.so: drops the C++ operators object (poolmalloc defines its own
# new/delete and must not need libstdc++), renames every public jemalloc
# symbol to pm_je_<name> so nothing in the archive can interpose on the
# program's malloc, and removes jemalloc's library constructor (it
# initialises jemalloc in every process at load time; poolmalloc wants it
# initialised on the first request that reaches it, and most processes never
# send one). It also points the few libm/libgcc_s/libc functions only its
# heap profiler and its fork registration use at poolmalloc's own versions
# (src/je_support.c), so the library needs no libm or libgcc_s at load time
# and poolmalloc decides when jemalloc's fork handlers run.
# Invoked with -DIN= -DOUT= -DWORK= -DOBJCOPY= -DAR=.
set(public_names
  malloc calloc realloc free posix_memalign aligned_alloc memalign valloc
  malloc_usable_size mallocx rallocx xallocx sallocx dallocx sdallocx nallocx
  mallctl mallctlnametomib mallctlbymib malloc_stats_print malloc_message
  malloc_conf malloc_conf_2_conf_harder)
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(map "")
foreach(n IN LISTS public_names)
  string(APPEND map "${n} pm_je_${n}\n")
endforeach()
# used only by the profiler (prof:true), by jemalloc's own init and by its
# background thread (gettimeofday: resolving that import ran its IFUNC
# resolver at load time, a page fault of every process)
foreach(n exp log round pthread_atfork _Unwind_Backtrace _Unwind_GetIP gettimeofday)
  string(APPEND map "${n} pm_je_support_${n}\n")
endforeach()
file(WRITE "${WORK}/rename.map" "${map}")
execute_process(COMMAND "${AR}" x "${IN}" WORKING_DIRECTORY "${WORK}"
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "ar x ${IN} failed")
endif()
file(REMOVE "${WORK}/jemalloc_cpp.pic.o")
file(GLOB objs "${WORK}/*.o")
# Its read-only pointer tables (.data.rel.ro*: the mallctl tree, some 1,100
# pointers) go to the section pm_je_lazy, whose relocations
# tools/pm_lazy_relocs.c moves out of the loader's table after the link:
# they are applied when jemalloc starts (src/je_support.c), so processes
# that never start it do not copy those pages at load.
set(lazy --rename-section .data.rel.ro=pm_je_lazy,alloc,load,contents,data
         --rename-section .data.rel.ro.local=pm_je_lazy,alloc,load,contents,data)
foreach(o IN LISTS objs)
  execute_process(COMMAND "${OBJCOPY}" "--redefine-syms=${WORK}/rename.map"
                          --remove-section=.init_array --remove-section=.rela.init_array
                          ${lazy} "${o}"
                  RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "objcopy ${o} failed")
  endif()
endforeach()
file(REMOVE "${OUT}")
execute_process(COMMAND "${AR}" rcs "${OUT}" ${objs} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "ar rcs ${OUT} failed")
endif()
