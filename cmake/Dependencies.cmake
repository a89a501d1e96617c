# Every external library comes from Debian's packages through pkg-config
# (scripts/install-deps.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(WOLFSSL REQUIRED IMPORTED_TARGET wolfssl)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(INIH REQUIRED IMPORTED_TARGET inih)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
pkg_check_modules(SQLITE REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
pkg_check_modules(SYSTEMD IMPORTED_TARGET libsystemd)
if(DOKU_BUILD_TESTS)
  pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()
find_program(PROTOC_C protoc-c REQUIRED)
# protoc writes the descriptor set that server reflection serves
# (proto/CMakeLists.txt); descriptor.proto (Debian's libprotobuf-dev) is what
# the daemon reads it with.
find_program(PROTOC protoc REQUIRED)
find_path(PROTOBUF_PROTO_DIR google/protobuf/descriptor.proto REQUIRED
  PATHS /usr/include NO_DEFAULT_PATH)
