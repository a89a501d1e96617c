# Call graphs of the daemon, for the architecture checks of tests/arch.
#
# DOKU_CALLGRAPH (gcc only): every object file gets its static call graph
# beside it (foo.c.o -> foo.c.ci, -fcallgraph-info); tests/arch/check_calls.py
# reads those of bridged/.
#
# DOKU_TRACE_CALLS: the targets defined under bridged/ (the daemon's libraries,
# doku_snap and doku-bridged) are built with -finstrument-functions, and
# doku-bridged gets tests/arch/trace_hook.c, which records every function
# entered and writes them out on SIGUSR2 (tests/arch/trace_rpc.sh). Programs
# linking an instrumented library without the hook (dokuctl, doku-snapsim,
# the unit tests) get glibc's empty __cyg_profile_func_enter/exit. Their debug
# information is DWARF 4: binutils 2.40's addr2line names the including .c
# instead of the header for some functions of headers (list.h) in DWARF 5.
option(DOKU_CALLGRAPH "gcc: write each object's call graph (.ci) for tests/arch/check_calls.py" OFF)
option(DOKU_TRACE_CALLS "Instrument the daemon's functions for tests/arch/trace_rpc.sh" OFF)

if(DOKU_CALLGRAPH)
  if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
    add_compile_options($<$<COMPILE_LANGUAGE:C>:-fcallgraph-info>)
  else()
    message(WARNING "DOKU_CALLGRAPH needs gcc's -fcallgraph-info: ignored with ${CMAKE_C_COMPILER_ID}")
  endif()
endif()

# Every compiled target defined in DIR or below it.
function(doku_instrument_dir dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t ${targets})
    get_target_property(type ${t} TYPE)
    if(type MATCHES "^(STATIC_LIBRARY|OBJECT_LIBRARY|EXECUTABLE)$")
      target_compile_options(${t} PRIVATE $<$<COMPILE_LANGUAGE:C>:-finstrument-functions>
                                          $<$<COMPILE_LANGUAGE:C>:-gdwarf-4>)
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub ${subdirs})
    doku_instrument_dir(${sub})
  endforeach()
endfunction()

# Run once every target exists (deferred to the end of the top directory).
function(doku_trace_calls)
  doku_instrument_dir(${PROJECT_SOURCE_DIR}/bridged)
  target_sources(doku-bridged PRIVATE ${PROJECT_SOURCE_DIR}/tests/arch/trace_hook.c)
endfunction()

if(DOKU_TRACE_CALLS)
  cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL doku_trace_calls)
endif()
