# Install rules: headers, the library, a CMake package (find_package(tulipa) then tulipa::tulipa) and tulipa.pc.
# Both package files are relocatable: `cmake --install build --prefix DIR` gives a tree that works from DIR.
# A library the core links must be named twice more, because the library is static and its
# consumers link those too: find_dependency() in tulipaConfig.cmake.in, and its pkg-config module name in
# TULIPA_PC_REQUIRES below (a component names its own: tulipa_add_component). The install test (tests/consumer/)
# fails to link when one is missing. liburing (the io_uring backend, src/CMakeLists.txt) is linked by name instead:
# the exported target says `uring` and tulipa.pc `-luring` (TULIPA_PC_LIBS), both found in the system's paths.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)


install(TARGETS tulipa EXPORT tulipaTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/tulipa" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT tulipaTargets NAMESPACE tulipa:: DESTINATION ${TULIPA_CMAKE_DIR})

configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/tulipaConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/tulipaConfig.cmake" INSTALL_DESTINATION ${TULIPA_CMAKE_DIR})
# 0.x: a minor version may break the API, so only the same minor version is compatible.
write_basic_package_version_file("${PROJECT_BINARY_DIR}/tulipaConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/tulipaConfig.cmake" "${PROJECT_BINARY_DIR}/tulipaConfigVersion.cmake"
  DESTINATION ${TULIPA_CMAKE_DIR})

# tulipa.pc finds the prefix from its own place (pkg-config's ${pcfiledir}), so it needs no absolute path.
set(TULIPA_PC_REQUIRES "")
file(RELATIVE_PATH TULIPA_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" TULIPA_PC_TO_PREFIX "${TULIPA_PC_TO_PREFIX}")
configure_file("${CMAKE_CURRENT_LIST_DIR}/tulipa.pc.in" "${PROJECT_BINARY_DIR}/tulipa.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/tulipa.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
