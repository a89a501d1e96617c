# doku-bridged: the daemon. Its modules form the static library
# doku_bridged_core (so that the unit tests can link them); main.c makes the
# executable. The durable state (doku_store, docs/state.md) comes from store.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/store.cmake)
add_library(doku_bridged_core STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/journal.c
  ${CMAKE_CURRENT_SOURCE_DIR}/log.c
  ${CMAKE_CURRENT_SOURCE_DIR}/secrets.c
  ${CMAKE_CURRENT_SOURCE_DIR}/config.c
  ${CMAKE_CURRENT_SOURCE_DIR}/outcome.c
  ${CMAKE_CURRENT_SOURCE_DIR}/methods.c
  ${CMAKE_CURRENT_SOURCE_DIR}/upstream.c
  ${CMAKE_CURRENT_SOURCE_DIR}/tokens.c
  ${CMAKE_CURRENT_SOURCE_DIR}/call.c
  ${CMAKE_CURRENT_SOURCE_DIR}/conn.c
  ${CMAKE_CURRENT_SOURCE_DIR}/server.c
  ${CMAKE_CURRENT_SOURCE_DIR}/metrics.c)
target_include_directories(doku_bridged_core PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(doku_bridged_core PUBLIC DOKU_VERSION="${PROJECT_VERSION}")
target_link_libraries(doku_bridged_core PUBLIC doku_store doku_snap doku_proto
  PkgConfig::LIBUV PkgConfig::CURL PkgConfig::INIH PkgConfig::JANSSON)

add_executable(doku-bridged ${CMAKE_CURRENT_SOURCE_DIR}/main.c)
target_link_libraries(doku-bridged PRIVATE doku_bridged_core)
if(SYSTEMD_FOUND)
  target_link_libraries(doku-bridged PRIVATE PkgConfig::SYSTEMD)
  target_compile_definitions(doku-bridged PRIVATE DOKU_HAVE_SYSTEMD=1)
endif()
install(TARGETS doku-bridged RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT daemon)
