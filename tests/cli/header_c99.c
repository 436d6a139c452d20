/* The public header compiled as strict C99 (-std=c99 -Wall -Wextra -pedantic -Werror): the
 * build is the test. Run, it checks that the linked library matches the header. */
#include <stdio.h>
#include <string.h>
#include <v4engine.h>

#define CHECK(cond)                                             \
  do {                                                          \
    if (!(cond)) {                                              \
      fprintf(stderr, "header_c99: check failed: %s\n", #cond); \
      failures++;                                               \
    }                                                           \
  } while (0)

int main(void) {
  int failures = 0;
  char expected[32];
  v4_model_params mp = v4_model_default_params();
  v4_context_params cp = v4_context_default_params();
  v4_sampler_params sp = v4_sampler_default_params();
  v4_generate_params gp = v4_generate_default_params();

  snprintf(expected, sizeof expected, "%d.%d.%d", V4_VERSION_MAJOR, V4_VERSION_MINOR,
           V4_VERSION_PATCH);
  CHECK(v4_version() != NULL);
  CHECK(strcmp(v4_version(), expected) == 0);
  CHECK(V4_VERSION_NUMBER == V4_VERSION_MAJOR * 10000 + V4_VERSION_MINOR * 100 + V4_VERSION_PATCH);
  CHECK(mp.struct_size == sizeof(v4_model_params));
  CHECK(cp.struct_size == sizeof(v4_context_params));
  CHECK(sp.struct_size == sizeof(v4_sampler_params));
  CHECK(gp.struct_size == sizeof(v4_generate_params));
  CHECK(v4_status_string(V4_OK) != NULL);
  CHECK(v4_status_string(V4_ERR_FORMAT) != NULL);
  CHECK(v4_last_error() != NULL);
  if (failures) return 1;
  printf("header_c99: library %s matches header %s\n", v4_version(), expected);
  return 0;
}
