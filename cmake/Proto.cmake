# doku_protoc_c(OUT_SRCS OUT_HDRS file.proto...): generate protobuf-c sources
# into the build tree at build time (never committed).
function(doku_protoc_c out_srcs out_hdrs)
  set(srcs)
  set(hdrs)
  foreach(proto ${ARGN})
    string(REGEX REPLACE "\\.proto$" "" base ${proto})
    set(c ${CMAKE_CURRENT_BINARY_DIR}/${base}.pb-c.c)
    set(h ${CMAKE_CURRENT_BINARY_DIR}/${base}.pb-c.h)
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${PROTOC_C} -I${CMAKE_CURRENT_SOURCE_DIR} --c_out=${CMAKE_CURRENT_BINARY_DIR} ${proto}
      DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${proto}
      WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
      COMMENT "protoc-c ${proto}")
    list(APPEND srcs ${c})
    list(APPEND hdrs ${h})
  endforeach()
  set(${out_srcs} ${srcs} PARENT_SCOPE)
  set(${out_hdrs} ${hdrs} PARENT_SCOPE)
endfunction()
