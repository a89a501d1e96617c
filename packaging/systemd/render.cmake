# Renders doku-bridged.service for the prefix it is installed under. install(CODE)
# runs it at install time (so that a package, whose prefix is /usr, and a plain
# `cmake --install` get the right ExecStart=); the tests run it as a script:
#   cmake -DPREFIX=/usr -DSBINDIR=sbin -DOUT=FILE -P render.cmake
cmake_path(ABSOLUTE_PATH SBINDIR BASE_DIRECTORY "${PREFIX}" OUTPUT_VARIABLE sbindir)
configure_file(${CMAKE_CURRENT_LIST_DIR}/doku-bridged.service.in ${OUT} @ONLY)
