# doku_store: the daemon's durable state (docs/state.md): sealed secrets
# (sealed.c; key files checked by keyfile.c), the SQLite sessions and journal
# on a worker thread (store.c) and the pure reconciliation logic (reconcile.c). Included by bridged/CMakeLists.txt
# (and, until then, by tests/unit/store).
find_package(Threads REQUIRED)
add_library(doku_store STATIC
  ${CMAKE_CURRENT_LIST_DIR}/keyfile.c
  ${CMAKE_CURRENT_LIST_DIR}/sealed.c
  ${CMAKE_CURRENT_LIST_DIR}/store.c
  ${CMAKE_CURRENT_LIST_DIR}/reconcile.c)
target_include_directories(doku_store PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(doku_store
  PUBLIC doku_snap doku_proto PkgConfig::LIBUV PkgConfig::SQLITE PkgConfig::WOLFSSL
         Threads::Threads)
