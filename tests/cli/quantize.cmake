# Tests of `v4 quantize` (tests/cli/quantize_tests.sh), included from tests/cli/CMakeLists.txt.
# They run the tool on the bundled model and on the quantisation vectors in tests/data/quant.
set(V4_QUANTIZE_TESTS quantize_vectors quantize_greedy quantize_choices quantize_errors
  quantize_perplexity)
foreach(name IN LISTS V4_QUANTIZE_TESTS)
  add_test(NAME ${name}
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/quantize_tests.sh ${name} $<TARGET_FILE:v4>
            ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/work/${name})
endforeach()
set_tests_properties(${V4_QUANTIZE_TESTS} PROPERTIES LABELS model
  ENVIRONMENT_MODIFICATION "V4_MODEL=unset:" SKIP_RETURN_CODE 77 TIMEOUT 300)
