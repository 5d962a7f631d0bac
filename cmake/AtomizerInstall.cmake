# Install rules and an exported package, so that users can `find_package(atomizer)` and link
# `atomizer::engine` (which brings `atomizer::persistence`).
include(CMakePackageConfigHelpers)

install(TARGETS atomizer_persistence atomizer_engine
  EXPORT atomizerTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY persistence/include/ engine/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS atomizer RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(EXPORT atomizerTargets
  NAMESPACE atomizer::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/atomizer)
configure_package_config_file(cmake/atomizerConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/atomizerConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/atomizer)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/atomizerConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/atomizerConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/atomizerConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/atomizer)
