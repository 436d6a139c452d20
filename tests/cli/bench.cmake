# Tests of `v4 mkmodel`, `v4 bench` and `v4 perplexity` (tests/cli/bench_tests.sh), included
# from tests/cli/CMakeLists.txt. The quick ones are labelled "model"; the ones that run real
# benchmarks (timings, a 1 GiB bandwidth probe) "bench", which the default test run excludes.
set(V4_BENCH_MODEL_TESTS mkmodel_tiny regrouped_layouts mkmodel_errors bench_errors perplexity_bundled perplexity_errors
  bench_kv_disk)
set(V4_BENCH_BENCH_TESTS bench_json bench_tokenize)
foreach(name IN LISTS V4_BENCH_MODEL_TESTS V4_BENCH_BENCH_TESTS)
  add_test(NAME ${name}
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/bench_tests.sh ${name} $<TARGET_FILE:v4>
            ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/work/${name})
endforeach()
set_tests_properties(${V4_BENCH_MODEL_TESTS} PROPERTIES LABELS model
  ENVIRONMENT_MODIFICATION "V4_MODEL=unset:" SKIP_RETURN_CODE 77 TIMEOUT 300)
set_tests_properties(${V4_BENCH_BENCH_TESTS} PROPERTIES LABELS bench
  ENVIRONMENT_MODIFICATION "V4_MODEL=unset:" SKIP_RETURN_CODE 77 TIMEOUT 600 RUN_SERIAL ON)
