# What `make install` puts where, and the Debian package `make deb` makes of the same install
# (CPack's DEB generator: dpkg-deb and dpkg-shlibdeps over this build tree, no rebuild).
#
#   <prefix>/sbin/ferryd, <prefix>/bin/ferryctl       (GNUInstallDirs)
#   <prefix>/lib/libferry.so.1, include/ferry/ferry.h, lib/pkgconfig/ferry.pc (src/lib)
#   <prefix>/share/man/man8/ferryd.8.gz, ferryctl.8.gz, man5/ferryd.json.5.gz (docs/man, pandoc)
#   ferryd.service in /lib/systemd/system for prefix /usr, else <prefix>/lib/systemd/system
#   /etc/ferry/ferryd.json, the example configuration (never over an existing one)
# State lives in /var/lib/ferry: the configuration's state_dir and the unit's StateDirectory=,
# created by ferryd (or systemd) when it first starts.
include(GNUInstallDirs)

set(FERRY_VERSION "0.1.0" CACHE STRING "Ferry's version (the Debian package's)")
set(FERRY_SYSTEMD_UNIT_DIR "" CACHE PATH
    "where ferryd.service goes (empty: /lib/systemd/system for prefix /usr, else <prefix>/lib/systemd/system)")
set(FERRY_DEB_MAINTAINER "Seed 77fadfd2 maintainers <maintainers@users.noreply.r-seed-77fadfd2.example>"
    CACHE STRING "the Debian package's Maintainer field")

# `make install` and CPack install only what they name (make install / make deb build ferryd,
# ferryctl, libferry and the man pages first), not every test and benchmark of `all`.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS ferryd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS ferryctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Man pages, from docs/man/*.md by pandoc at build time.
find_program(FERRY_PANDOC pandoc)
set(ferry_man_pages ferryd.8 ferryctl.8 ferryd.json.5)
set(ferry_man_outputs "")
foreach(page IN LISTS ferry_man_pages)
  set(ferry_man_src ${PROJECT_SOURCE_DIR}/docs/man/${page}.md)
  set(ferry_man_out ${CMAKE_BINARY_DIR}/man/${page})
  add_custom_command(OUTPUT ${ferry_man_out} ${ferry_man_out}.gz
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
                     COMMAND ${FERRY_PANDOC} --standalone --from markdown-smart --to man --output ${ferry_man_out} ${ferry_man_src}
                     COMMAND gzip -9 -n -k -f ${ferry_man_out}
                     DEPENDS ${ferry_man_src} COMMENT "pandoc: man page ${page}" VERBATIM)
  list(APPEND ferry_man_outputs ${ferry_man_out} ${ferry_man_out}.gz)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" ferry_man_section ${page})
  install(FILES ${ferry_man_out}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${ferry_man_section})
endforeach()
if(FERRY_PANDOC)
  add_custom_target(man ALL DEPENDS ${ferry_man_outputs})
else()
  message(WARNING
    "\n*** pandoc was not found: the man pages (docs/man) cannot be built, so `make install` and "
    "`make deb` will fail. Install it: scripts/install-deps (or apt-get install pandoc), then "
    "configure again. ***\n")
  add_custom_target(man
    COMMAND ${CMAKE_COMMAND} -E echo "man: pandoc was not found when CMake ran; apt-get install pandoc and configure again"
    COMMAND ${CMAKE_COMMAND} -E false VERBATIM)
endif()

# The unit and the example configuration: paths decided when installing, so that
# `cmake --install --prefix` and the package (prefix /usr) get an ExecStart= that exists.
install(CODE "set(FERRY_UNIT_TEMPLATE \"${PROJECT_SOURCE_DIR}/systemd/ferryd.service.in\")
set(FERRY_EXAMPLE_CONFIG \"${PROJECT_SOURCE_DIR}/examples/ferryd.json\")
set(FERRY_SBINDIR \"${CMAKE_INSTALL_SBINDIR}\")
set(FERRY_UNIT_DIR \"${FERRY_SYSTEMD_UNIT_DIR}\")")
install(SCRIPT ${CMAKE_CURRENT_LIST_DIR}/InstallSystemFiles.cmake)

# make deb: the same install, as a Debian package, in <build>/packages.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ferry)
set(CPACK_PACKAGE_VERSION ${FERRY_VERSION})
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_PACKAGE_CONTACT ${FERRY_DEB_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "user-space iSCSI target and block storage with copy offload")
# The extended description (the summary above is its first line).
string(CONCAT CPACK_DEBIAN_PACKAGE_DESCRIPTION
       "Ferry serves block devices (RAM, files and block devices, remote iSCSI LUNs,\n"
       "Ceph RBD images, device-mapper-style volumes) over iSCSI, and moves data\n"
       "between them inside the storage: EXTENDED COPY, ODX tokens, reflink,\n"
       "copy_file_range. This package holds the daemon ferryd and its systemd unit,\n"
       "the ferryctl tool, and the libferry copy library.")
# Installed with DESTDIR=<staging> and prefix /usr, so that absolute destinations (/etc,
# /lib/systemd) land in the package and the unit's ExecStart= names /usr/sbin/ferryd.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: from dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm ${PROJECT_SOURCE_DIR}/packaging/debian/postrm
    ${PROJECT_SOURCE_DIR}/packaging/debian/triggers)
include(CPack)
