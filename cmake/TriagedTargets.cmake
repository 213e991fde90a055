# One helper per kind of target, so every target gets the same warnings and sanitizers.

set(TRIAGED_WARNINGS -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion)
if(TRIAGED_WERROR)
  list(APPEND TRIAGED_WARNINGS -Werror)
endif()

if(TRIAGED_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

function(_triaged_common target)
  target_compile_options(${target} PRIVATE ${TRIAGED_WARNINGS})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()

# triaged_library(NAME SOURCES ... DEPS ...)
function(triaged_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  _triaged_common(${name})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# triaged_executable(NAME SOURCES ... DEPS ...)
function(triaged_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  _triaged_common(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()

# triaged_test(NAME SOURCES ... DEPS ... LABELS ... [FIXTURES ...]): a GoogleTest binary whose
# cases become ctest tests (FIXTURES: ctest fixtures they require, e.g. the Kafka broker).
function(triaged_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS;FIXTURES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  _triaged_common(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    TRIAGED_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    TRIAGED_BINARY_DIR="${PROJECT_BINARY_DIR}")
  # NO_PRETTY_VALUES: a parameterized case is named by its INSTANTIATE_TEST_SUITE_P name
  # generator (or its index), never by the printed parameter value.
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST NO_PRETTY_VALUES
    PROPERTIES LABELS "${ARG_LABELS}" FIXTURES_REQUIRED "${ARG_FIXTURES}")
endfunction()

# triaged_bench(NAME SOURCES ... DEPS ...)
function(triaged_bench name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  _triaged_common(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
endfunction()
