# Run by `cmake --install` (and CPack): installs ferryd.service with ExecStart= pointing at the
# installed ferryd, and the example /etc/ferry/ferryd.json unless one is there already.
# Set by cmake/Packaging.cmake: FERRY_UNIT_TEMPLATE, FERRY_EXAMPLE_CONFIG, FERRY_SBINDIR,
# FERRY_UNIT_DIR.
if(IS_ABSOLUTE "${FERRY_SBINDIR}")
  set(FERRY_SBINDIR_FULL "${FERRY_SBINDIR}")
else()
  set(FERRY_SBINDIR_FULL "${CMAKE_INSTALL_PREFIX}/${FERRY_SBINDIR}")
endif()
set(unit_dir "${FERRY_UNIT_DIR}")
if(unit_dir STREQUAL "")
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(unit_dir /lib/systemd/system)  # Debian 12's systemdsystemunitdir
  else()
    set(unit_dir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")  # also on systemd's unit path
  endif()
endif()

set(FERRY_SBINDIR "${FERRY_SBINDIR_FULL}")  # @FERRY_SBINDIR@ in the template
set(unit "$ENV{DESTDIR}${unit_dir}/ferryd.service")
message(STATUS "Installing: ${unit}")
configure_file("${FERRY_UNIT_TEMPLATE}" "${unit}" @ONLY)
file(CHMOD "${unit}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${unit}")

set(config "$ENV{DESTDIR}/etc/ferry/ferryd.json")
if(EXISTS "${config}")
  message(STATUS "Keeping: ${config} (the example is ${FERRY_EXAMPLE_CONFIG})")
else()
  # file(INSTALL) puts DESTDIR in front of an absolute DESTINATION itself.
  file(INSTALL "${FERRY_EXAMPLE_CONFIG}" DESTINATION /etc/ferry
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
