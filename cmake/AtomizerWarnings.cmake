# atomizer_target_warnings(<target>): the project's warning set, always as errors.
# clang additionally runs the thread-safety analysis (STYLE §2.7): g++ silently skips it.
function(atomizer_target_warnings target)
  # -Wmissing-field-initializers is off: g++ 12 flags designated initializers that rely on default
  # member initializers, which is how our options and request structs are meant to be filled.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor
                         -Wno-missing-field-initializers)
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    target_compile_options(${target} PRIVATE -Wthread-safety)
  endif()
endfunction()
