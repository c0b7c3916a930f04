# Optional components (http, redis, postgres): each a library of its own, tulipa::<name>, that links the core and
# only what it needs itself. The core never links a component's dependency.
#   tulipa_add_component(<name> [LINK <targets>...] [FIND_DEPENDENCY "<find_dependency args>"...]
#                        [PC_REQUIRES "<pkg-config modules>"] [PC_LIBS "<-l flags>"])
# builds every .cpp under the calling folder (src/<name>/) into libtulipa-<name>.a, installs it with its own
# export set (find_package(tulipa COMPONENTS <name>) loads it) and writes tulipa-<name>.pc (Requires: tulipa).
# Public headers live in include/tulipa/<name>/ and are installed with the core's include tree.
# A component may LINK another one (tulipa::tls for https): its package files then load and require that one too.
function(tulipa_add_component name)
  cmake_parse_arguments(C "" "PC_REQUIRES;PC_LIBS" "LINK;FIND_DEPENDENCY" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/*.cpp")
  add_library(tulipa_${name} ${sources})
  add_library(tulipa::${name} ALIAS tulipa_${name})
  set_target_properties(tulipa_${name} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME tulipa-${name})
  target_link_libraries(tulipa_${name} PUBLIC tulipa::tulipa ${C_LINK})
  target_include_directories(tulipa_${name} PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(tulipa_${name} PRIVATE -Wall -Wextra -Wpedantic)

  install(TARGETS tulipa_${name} EXPORT tulipa-${name}-targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT tulipa-${name}-targets NAMESPACE tulipa:: DESTINATION ${TULIPA_CMAKE_DIR})
  set(deps "include(CMakeFindDependencyMacro)\n")
  foreach(dep IN LISTS C_FIND_DEPENDENCY)
    string(APPEND deps "find_dependency(${dep})\n")
  endforeach()
  set(pc_requires "${C_PC_REQUIRES}")
  foreach(lib IN LISTS C_LINK)
    if(lib MATCHES "^tulipa::(.+)$")
      set(other ${CMAKE_MATCH_1})
      string(APPEND deps "if(NOT TARGET tulipa::${other})\n"
        "  include(\"\${CMAKE_CURRENT_LIST_DIR}/tulipa-${other}-deps.cmake\")\n"
        "  include(\"\${CMAKE_CURRENT_LIST_DIR}/tulipa-${other}-targets.cmake\")\n"
        "endif()\n")
      string(APPEND pc_requires " tulipa-${other} = ${PROJECT_VERSION}")
    endif()
  endforeach()
  file(WRITE "${PROJECT_BINARY_DIR}/tulipa-${name}-deps.cmake" "${deps}")
  install(FILES "${PROJECT_BINARY_DIR}/tulipa-${name}-deps.cmake" DESTINATION ${TULIPA_CMAKE_DIR})

  set(TULIPA_COMPONENT ${name})
  set(TULIPA_COMPONENT_PC_REQUIRES "${pc_requires}")
  set(TULIPA_COMPONENT_PC_LIBS "${C_PC_LIBS}")
  file(RELATIVE_PATH TULIPA_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" TULIPA_PC_TO_PREFIX "${TULIPA_PC_TO_PREFIX}")
  configure_file("${PROJECT_SOURCE_DIR}/cmake/tulipa-component.pc.in" "${PROJECT_BINARY_DIR}/tulipa-${name}.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/tulipa-${name}.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()
