// The public header compiled as C++11 (-std=c++11 -Wall -Wextra -Wpedantic -Werror): the
// build is the test; running it checks the version like header_c99.c.
#include <v4engine.h>

#include <cstdio>
#include <cstring>

int main() {
  char expected[32];
  std::snprintf(expected, sizeof expected, "%d.%d.%d", V4_VERSION_MAJOR, V4_VERSION_MINOR,
                V4_VERSION_PATCH);
  const v4_generate_params gp = v4_generate_default_params();
  if (std::strcmp(v4_version(), expected) != 0 || gp.struct_size != sizeof gp) {
    std::fprintf(stderr, "header_cxx11: library %s, header %s\n", v4_version(), expected);
    return 1;
  }
  return 0;
}
