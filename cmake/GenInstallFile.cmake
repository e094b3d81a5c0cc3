# GenInstallFile.cmake - makes an installed file from a source file (cmake -P,
# run by custom commands in cmake/Install.cmake):
#   IN, OUT       the source and the generated file
#   VERSION       replaces @PROJECT_VERSION@ (man pages)
#   TOOL          pm-options: its `--man` output replaces the line
#                 @POOLMALLOC_ENVIRONMENT@ (poolmalloc.1: the variables come
#                 from the library's own option table)
#   LIBDIR, LIBEXECDIR
#                 the values of `installed_libdir=` and `installed_libexecdir=`
#                 (scripts/poolmalloc: where the installed copy finds the
#                 library and pm-options, relative to its own directory)
file(READ "${IN}" text)
if(DEFINED VERSION)
  string(REPLACE "@PROJECT_VERSION@" "${VERSION}" text "${text}")
endif()
if(DEFINED TOOL)
  execute_process(COMMAND "${TOOL}" --man OUTPUT_VARIABLE env RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT env MATCHES "POOLMALLOC_")
    message(FATAL_ERROR "${TOOL} --man failed (${rc})")
  endif()
  string(FIND "${text}" "\n@POOLMALLOC_ENVIRONMENT@\n" at)
  if(at LESS 0)
    message(FATAL_ERROR "${IN} has no @POOLMALLOC_ENVIRONMENT@ line")
  endif()
  string(REPLACE "\n@POOLMALLOC_ENVIRONMENT@\n" "\n${env}" text "${text}")
endif()
foreach(var LIBDIR LIBEXECDIR)
  if(DEFINED ${var})
    string(TOLOWER "installed_${var}" name)
    string(FIND "${text}" "\n${name}=\n" at)
    if(at LESS 0)
      message(FATAL_ERROR "${IN} has no '${name}=' line")
    endif()
    string(REPLACE "\n${name}=\n" "\n${name}=${${var}}\n" text "${text}")
  endif()
endforeach()
file(WRITE "${OUT}.tmp" "${text}")
file(RENAME "${OUT}.tmp" "${OUT}")
