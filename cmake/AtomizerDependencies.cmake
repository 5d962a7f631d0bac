# Every dependency comes from Debian's packages (tools/setup installs them) and is found the
# normal way; nothing is downloaded and no third-party source lives in the tree.
find_package(absl REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb)

# lmdbxx and moodycamel are header-only and ship no CMake or pkg-config files.
find_path(ATOMIZER_LMDBXX_INCLUDE_DIR lmdb++.h REQUIRED)
find_path(ATOMIZER_MOODYCAMEL_INCLUDE_DIR concurrentqueue/concurrentqueue.h REQUIRED)

if(ATOMIZER_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(ATOMIZER_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
