# Warnings and hardening flags for every target of the project.
add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
                    -Wmissing-prototypes -Wformat=2 -Wvla)
add_compile_definitions(_GNU_SOURCE)
if(DOKU_WERROR)
  add_compile_options(-Werror)
endif()

if(DOKU_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer -O1)
  add_link_options(-fsanitize=address,undefined)
  add_compile_definitions(DOKU_SANITIZE=1)
else()
  # _FORTIFY_SOURCE needs optimisation; ASan replaces it in the sanitizer build.
  add_compile_options($<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
endif()
add_compile_options(-fstack-protector-strong -fPIE)
add_link_options(-pie -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)
