# Install.cmake - what `cmake --install <build> [--prefix P]` installs, and the
# Debian package `cpack -G DEB` makes of it (included from CMakeLists.txt
# once the targets exist; README.md "Install" and docs/install.md say how to
# use it, tests/install tests it):
#
#   bin/poolmalloc, bin/poolmalloc-report     the wrapper and the report reader
#   <libdir>/libpoolmalloc.so{,.0,.X.Y.Z}     the library (SONAME libpoolmalloc.so.0)
#   include/poolmalloc.h                      the API
#   <libdir>/pkgconfig/poolmalloc.pc          pkg-config --cflags --libs poolmalloc
#   <libdir>/cmake/poolmalloc/                find_package(poolmalloc): poolmalloc::poolmalloc
#   libexec/poolmalloc/pm-options             the option table (poolmalloc --help)
#   share/man/man1/poolmalloc{,-report}.1, share/man/man3/poolmalloc.3 (+ one page per function)
#   share/doc/poolmalloc/                     README.md (links to files not
#                                             installed made plain text) and
#                                             docs/{install,report,design}.md
#
# Every version in them (library file name, pkg-config, CMake package, man
# pages, .deb) is project(VERSION) of CMakeLists.txt, as is the library's own
# (PM_VERSION: poolmalloc_version(), the report, POOLMALLOC_VERBOSE=1).

# --- directories ---
# GNUInstallDirs picks Debian's multiarch directory (lib/x86_64-linux-gnu) only
# when the prefix is /usr. The .deb always installs under /usr, whatever
# prefix the build tree was configured with, and the library's path is what
# users put in LD_PRELOAD: so on Debian the library goes to lib/<multiarch>
# for every prefix while CMAKE_INSTALL_LIBDIR is left at its default "lib"
# (/usr/local/lib/<multiarch> is on Debian's library path as well).
# -DPOOLMALLOC_INSTALL_LIBDIR=DIR chooses another directory.
if(DEFINED POOLMALLOC_INSTALL_LIBDIR)
  set(PM_INSTALL_LIBDIR "${POOLMALLOC_INSTALL_LIBDIR}")
elseif(CMAKE_INSTALL_LIBDIR STREQUAL "lib" AND CMAKE_LIBRARY_ARCHITECTURE
       AND EXISTS /etc/debian_version)
  set(PM_INSTALL_LIBDIR "lib/${CMAKE_LIBRARY_ARCHITECTURE}")
else()
  set(PM_INSTALL_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
endif()
set(PM_INSTALL_LIBEXECDIR "${CMAKE_INSTALL_LIBEXECDIR}/poolmalloc")
set(PM_INSTALL_CMAKEDIR "${PM_INSTALL_LIBDIR}/cmake/poolmalloc")

# The installed wrapper finds the library and pm-options through these
# directories, relative to bin/ (so a relocated tree still works), or
# absolute when they are. Empty when bin/ is absolute and they are not: the
# wrapper then searches ../lib/ and ../lib/<multiarch>/ as in any tree.
foreach(d LIBDIR LIBEXECDIR)
  if(IS_ABSOLUTE "${PM_INSTALL_${d}}")
    set(PM_WRAPPER_${d} "${PM_INSTALL_${d}}")
  elseif(IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
    set(PM_WRAPPER_${d} "")
  else()
    file(RELATIVE_PATH PM_WRAPPER_${d} "/p/${CMAKE_INSTALL_BINDIR}" "/p/${PM_INSTALL_${d}}")
  endif()
endforeach()

# --- generated files: the installed wrapper, the man pages ---
set(PM_GEN_DIR "${CMAKE_BINARY_DIR}/install-files")
set(PM_GEN "${CMAKE_SOURCE_DIR}/cmake/GenInstallFile.cmake")
set(PM_INSTALLED_WRAPPER "${PM_GEN_DIR}/poolmalloc")
add_custom_command(OUTPUT "${PM_INSTALLED_WRAPPER}"
  COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_SOURCE_DIR}/scripts/poolmalloc
          -DOUT=${PM_INSTALLED_WRAPPER} -DLIBDIR=${PM_WRAPPER_LIBDIR}
          -DLIBEXECDIR=${PM_WRAPPER_LIBEXECDIR} -P ${PM_GEN}
  DEPENDS ${CMAKE_SOURCE_DIR}/scripts/poolmalloc ${PM_GEN}
  COMMENT "Generating the installed copy of scripts/poolmalloc" VERBATIM)

# poolmalloc.1: the template plus `scripts/poolmalloc --help-roff` (the
# options, from the table --help prints) and `pm-options --man` (the
# variables, from the option table the library is built with)
set(PM_MAN_DIR "${CMAKE_BINARY_DIR}/man")
add_custom_command(OUTPUT "${PM_MAN_DIR}/poolmalloc.1"
  COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_SOURCE_DIR}/man/poolmalloc.1.in
          -DOUT=${PM_MAN_DIR}/poolmalloc.1 -DVERSION=${PROJECT_VERSION}
          -DTOOL=$<TARGET_FILE:pm-options> -DWRAPPER=${CMAKE_SOURCE_DIR}/scripts/poolmalloc
          -P ${PM_GEN}
  DEPENDS ${CMAKE_SOURCE_DIR}/man/poolmalloc.1.in ${CMAKE_SOURCE_DIR}/scripts/poolmalloc
          pm-options ${PM_GEN}
  COMMENT "Generating man/poolmalloc.1" VERBATIM)
set(PM_MAN_PAGES "${PM_MAN_DIR}/poolmalloc.1")
foreach(page poolmalloc-report.1 poolmalloc.3)
  add_custom_command(OUTPUT "${PM_MAN_DIR}/${page}"
    COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_SOURCE_DIR}/man/${page}.in
            -DOUT=${PM_MAN_DIR}/${page} -DVERSION=${PROJECT_VERSION} -P ${PM_GEN}
    DEPENDS ${CMAKE_SOURCE_DIR}/man/${page}.in ${PM_GEN}
    COMMENT "Generating man/${page}" VERBATIM)
  list(APPEND PM_MAN_PAGES "${PM_MAN_DIR}/${page}")
endforeach()

# the installed README.md: links to what is not installed beside it (examples/,
# docs/benchmarks.md...) become plain text
set(PM_DOCS docs/install.md docs/report.md docs/design.md)
set(PM_INSTALLED_README "${PM_GEN_DIR}/README.md")
add_custom_command(OUTPUT "${PM_INSTALLED_README}"
  COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_SOURCE_DIR}/README.md -DOUT=${PM_INSTALLED_README}
          "-DDOC_KEEP=${PM_DOCS}" -P ${PM_GEN}
  DEPENDS ${CMAKE_SOURCE_DIR}/README.md ${PM_GEN}
  COMMENT "Generating the installed copy of README.md" VERBATIM)
add_custom_target(pm_install_files ALL
  DEPENDS "${PM_INSTALLED_WRAPPER}" ${PM_MAN_PAGES} "${PM_INSTALLED_README}")

# man poolmalloc_version etc.: one-line pages that include poolmalloc(3)
set(PM_MAN3_LINKS)
foreach(fn poolmalloc_version poolmalloc_report_fd poolmalloc_report_buf
        poolmalloc_report_cb poolmalloc_get_totals)
  file(CONFIGURE OUTPUT "${PM_MAN_DIR}/links/${fn}.3" CONTENT ".so man3/poolmalloc.3\n")
  list(APPEND PM_MAN3_LINKS "${PM_MAN_DIR}/links/${fn}.3")
endforeach()

# --- install rules ---
install(TARGETS poolmalloc EXPORT poolmalloc-targets
  LIBRARY DESTINATION "${PM_INSTALL_LIBDIR}"
  INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(FILES "${CMAKE_SOURCE_DIR}/include/poolmalloc.h"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(PROGRAMS "${PM_INSTALLED_WRAPPER}" "${CMAKE_SOURCE_DIR}/scripts/poolmalloc-report"
  DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(TARGETS pm-options RUNTIME DESTINATION "${PM_INSTALL_LIBEXECDIR}")
# poolmalloc-report's package, found by the script at ../libexec/poolmalloc/pmreport
install(DIRECTORY "${CMAKE_SOURCE_DIR}/scripts/pmreport" DESTINATION "${PM_INSTALL_LIBEXECDIR}"
  FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
install(FILES "${PM_MAN_DIR}/poolmalloc.1" "${PM_MAN_DIR}/poolmalloc-report.1"
  DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
install(FILES "${PM_MAN_DIR}/poolmalloc.3" ${PM_MAN3_LINKS}
  DESTINATION "${CMAKE_INSTALL_MANDIR}/man3")
install(FILES "${PM_INSTALLED_README}" DESTINATION "${CMAKE_INSTALL_DOCDIR}")
list(TRANSFORM PM_DOCS PREPEND "${CMAKE_SOURCE_DIR}/")
install(FILES ${PM_DOCS} DESTINATION "${CMAKE_INSTALL_DOCDIR}/docs")

# pkg-config: written at install time, so that prefix= is the prefix really
# installed to (`cmake --install --prefix P`, /usr for the .deb)
file(CONFIGURE OUTPUT "${PM_GEN_DIR}/install-pc.cmake" @ONLY CONTENT [=[
set(pm_libdir "@PM_INSTALL_LIBDIR@")
set(pm_includedir "@CMAKE_INSTALL_INCLUDEDIR@")
get_filename_component(pm_prefix "${CMAKE_INSTALL_PREFIX}" ABSOLUTE)
foreach(v libdir includedir)
  if(IS_ABSOLUTE "${pm_${v}}")
    set(pm_pc_${v} "${pm_${v}}")
  else()
    set(pm_pc_${v} "\${prefix}/${pm_${v}}")
  endif()
endforeach()
if(IS_ABSOLUTE "${pm_libdir}")
  set(pm_pc "$ENV{DESTDIR}${pm_libdir}/pkgconfig/poolmalloc.pc")
else()
  set(pm_pc "$ENV{DESTDIR}${pm_prefix}/${pm_libdir}/pkgconfig/poolmalloc.pc")
endif()
message(STATUS "Installing: ${pm_pc}")
file(WRITE "${pm_pc}" "prefix=${pm_prefix}
libdir=${pm_pc_libdir}
includedir=${pm_pc_includedir}

Name: poolmalloc
Description: malloc interposer with per-thread pools over an embedded jemalloc
Version: @PROJECT_VERSION@
Libs: -L\${libdir} -lpoolmalloc
Cflags: -I\${includedir}
")
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${pm_pc}")
]=])
install(SCRIPT "${PM_GEN_DIR}/install-pc.cmake")

# CMake package: find_package(poolmalloc [X.Y]) -> poolmalloc::poolmalloc
include(CMakePackageConfigHelpers)
file(CONFIGURE OUTPUT "${PM_GEN_DIR}/poolmalloc-config.cmake" @ONLY CONTENT [=[
# find_package(poolmalloc): the imported target poolmalloc::poolmalloc
# (libpoolmalloc.so and include/poolmalloc.h), poolmalloc_VERSION.
include("${CMAKE_CURRENT_LIST_DIR}/poolmalloc-targets.cmake")
]=])
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(PM_COMPAT SameMinorVersion) # 0.x: a new minor version may break the API
else()
  set(PM_COMPAT SameMajorVersion)
endif()
write_basic_package_version_file("${PM_GEN_DIR}/poolmalloc-config-version.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY ${PM_COMPAT})
install(EXPORT poolmalloc-targets NAMESPACE poolmalloc::
  DESTINATION "${PM_INSTALL_CMAKEDIR}")
install(FILES "${PM_GEN_DIR}/poolmalloc-config.cmake"
  "${PM_GEN_DIR}/poolmalloc-config-version.cmake" DESTINATION "${PM_INSTALL_CMAKEDIR}")

# --- the Debian package: cpack -G DEB (in the build directory) ---
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME poolmalloc)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR poolmalloc)
set(CPACK_PACKAGE_CONTACT "poolmalloc <dev@poolmalloc.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "malloc interposer with per-thread pools and allocation reports")
set(CPACK_PACKAGE_DESCRIPTION
  "poolmalloc replaces malloc and free in unmodified programs through LD_PRELOAD.
It serves small requests from per-thread arenas and size-classed pools and
sends large blocks to a private copy of jemalloc embedded in the library,
and it can write a report at exit of where the memory went.
.
This package holds the preload library, the poolmalloc wrapper that runs a
command under it, poolmalloc-report (which aggregates the reports), the API
header, pkg-config and CMake files, and man pages.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # poolmalloc_X.Y.Z_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# Depends from the ELF files (dpkg-shlibdeps: libc6 (>= ...)) when the tools
# are there; otherwise the glibc this library needs (mallinfo2: 2.33)
find_program(PM_DPKG_SHLIBDEPS dpkg-shlibdeps)
find_program(PM_FILE file)
if(PM_DPKG_SHLIBDEPS AND PM_FILE)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.34)")
endif()
find_program(PM_READELF NAMES readelf ${CMAKE_READELF})
if(PM_READELF)
  # DEBIAN/shlibs, so that programs linking it depend on this package
  set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
  set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
endif()
# poolmalloc-report is Python; the wrapper reads the library's version with
# python3 too, but has a fallback. libunwind8: the profile's cheaper unwinder
# (loaded with dlopen when a report is asked for; libgcc's otherwise)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3, libunwind8")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS python3-matplotlib)
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/")
include(CPack)
