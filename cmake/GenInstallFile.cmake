# GenInstallFile.cmake - makes an installed file from a source file (cmake -P,
# run by custom commands in cmake/Install.cmake):
#   IN, OUT       the source and the generated file
#   VERSION       replaces @PROJECT_VERSION@ (man pages)
#   TOOL          pm-options: its `--man` output replaces the line
#                 @POOLMALLOC_ENVIRONMENT@ (poolmalloc.1: the variables come
#                 from the library's own option table)
#   WRAPPER       scripts/poolmalloc: its `--help-roff` output (the option
#                 table --help prints) replaces the line @POOLMALLOC_OPTIONS@
#                 (poolmalloc.1)
#   DOC_KEEP      a list of paths relative to the file (README.md) that are
#                 installed beside it: every other relative Markdown link
#                 [text](path) becomes "text (`path` in the source tree)" and
#                 every other image ![alt](path) is dropped, so that the
#                 installed copy has no broken link
#   LIBDIR, LIBEXECDIR
#                 the values of `installed_libdir=` and `installed_libexecdir=`
#                 (scripts/poolmalloc: where the installed copy finds the
#                 library and pm-options, relative to its own directory)
cmake_policy(SET CMP0057 NEW) # if(IN_LIST)
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
if(DEFINED WRAPPER)
  find_program(PM_BASH bash REQUIRED)
  execute_process(COMMAND "${PM_BASH}" "${WRAPPER}" --help-roff
    OUTPUT_VARIABLE opts RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT opts MATCHES "stats")
    message(FATAL_ERROR "${WRAPPER} --help-roff failed (${rc})")
  endif()
  string(FIND "${text}" "\n@POOLMALLOC_OPTIONS@\n" at)
  if(at LESS 0)
    message(FATAL_ERROR "${IN} has no @POOLMALLOC_OPTIONS@ line")
  endif()
  string(REPLACE "\n@POOLMALLOC_OPTIONS@\n" "\n${opts}" text "${text}")
endif()
if(DEFINED DOC_KEEP)
  # Markdown links with a relative target: kept when the target is installed
  string(REGEX MATCHALL "!?\\[[^]\n]*\\]\\([^)\n]*\\)" links "${text}")
  list(REMOVE_DUPLICATES links)
  foreach(link IN LISTS links)
    string(REGEX MATCH "^(!?)\\[([^]]*)\\]\\(([^)#]*)(#[^)]*)?\\)$" m "${link}")
    set(bang "${CMAKE_MATCH_1}")
    set(label "${CMAKE_MATCH_2}")
    set(target "${CMAKE_MATCH_3}")
    if(target STREQUAL "" OR target MATCHES "^[a-z]+:" OR target IN_LIST DOC_KEEP)
      continue()
    endif()
    if(bang STREQUAL "!")
      set(repl "")
    elseif(label STREQUAL target OR label STREQUAL "${target}/")
      set(repl "`${label}` in the source tree")
    else()
      set(repl "${label} (`${target}` in the source tree)")
    endif()
    string(REPLACE "${link}" "${repl}" text "${text}")
  endforeach()
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
