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

# doku_descriptor_set(OUT_SRC OUT_HDR NAME file.proto...): the FileDescriptorSet
# of the files (protoc --descriptor_set_out --include_imports, no source info)
# compiled into a C array at build time: NAME.c defines
# `const uint8_t NAME[]` and `const size_t NAME_len`, declared by NAME.h.
function(doku_descriptor_set out_src out_hdr name)
  set(bin ${CMAKE_CURRENT_BINARY_DIR}/${name}.binpb)
  set(c ${CMAKE_CURRENT_BINARY_DIR}/${name}.c)
  set(h ${CMAKE_CURRENT_BINARY_DIR}/${name}.h)
  set(deps)
  foreach(proto ${ARGN})
    list(APPEND deps ${CMAKE_CURRENT_SOURCE_DIR}/${proto})
  endforeach()
  add_custom_command(
    OUTPUT ${c} ${h}
    COMMAND ${PROTOC} -I${CMAKE_CURRENT_SOURCE_DIR} --include_imports
            --descriptor_set_out=${bin} ${ARGN}
    COMMAND ${CMAKE_COMMAND} -DIN=${bin} -DOUT_C=${c} -DOUT_H=${h} -DNAME=${name}
            -P ${PROJECT_SOURCE_DIR}/cmake/Embed.cmake
    DEPENDS ${deps} ${PROJECT_SOURCE_DIR}/cmake/Embed.cmake
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
    COMMENT "descriptor set ${name}")
  set(${out_src} ${c} PARENT_SCOPE)
  set(${out_hdr} ${h} PARENT_SCOPE)
endfunction()
