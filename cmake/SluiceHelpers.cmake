# sluice_add_plugin(<name> SOURCES <files...> [LIBS <targets...>])
#   Builds plugins/<name> as a loadable module named libsluice-<name>.so into
#   <build>/plugins, where the tests and `sluice --plugin-dir` find it, and
#   installs it into lib/sluice/plugins. A plugin links only the SDK and its own
#   dependencies, never the framework.
function(sluice_add_plugin name)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
  set(target sluice-${name})
  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE sluice::sdk ${P_LIBS})
  set_target_properties(${target} PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY "${SLUICE_PLUGIN_BUILD_DIR}"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  install(TARGETS ${target} LIBRARY DESTINATION ${SLUICE_PLUGIN_INSTALL_DIR})
endfunction()

# sluice_add_test(<name> SOURCES <files...> [LIBS <targets...>] [LABELS <labels...>] [NEEDS_RUNTIME])
#   A GoogleTest executable registered with ctest. Tests know where the build
#   put plugins, the sluice binary and the source tree through compile
#   definitions, so they load plugins exactly as production does.
function(sluice_add_test name)
  cmake_parse_arguments(T "NEEDS_RUNTIME" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main Threads::Threads)
  target_compile_definitions(${name} PRIVATE
    SLUICE_TEST_PLUGIN_DIR="${SLUICE_PLUGIN_BUILD_DIR}"
    SLUICE_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    SLUICE_TEST_BINARY_DIR="${CMAKE_BINARY_DIR}"
    SLUICE_TEST_SLUICE_BIN="${CMAKE_BINARY_DIR}/framework/sluice")
  # Tests that load plugins or run the binary need them built first.
  if(T_NEEDS_RUNTIME)
    add_dependencies(${name} sluice sluice_all_plugins)
  endif()
  set(properties TIMEOUT 300)
  if(T_LABELS)
    list(APPEND properties LABELS "${T_LABELS}")
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES ${properties})
endfunction()
