// Whole-file I/O shared by the writers of GGUF files and sessions: complete writes, and
// files replaced atomically so a crash never leaves half a file under the final name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace v4 {

// Writes all of [p, p+n) to fd, retrying after EINTR; returns 0 or an errno value.
int write_all(int fd, const void* p, size_t n);

// Writes `path` through a temporary file beside it: `body(fd)` writes the contents and returns
// 0 or an errno value; then fsync, rename over `path`, fsync of the directory. On any failure
// the temporary file is removed and v4::Error(io) names the path, the step and the cause.
void write_file_atomic(const std::string& path, const std::function<int(int fd)>& body);

// The whole file; v4::Error(io) naming the path when it cannot be opened or read.
std::vector<uint8_t> read_file_bytes(const std::string& path);

}  // namespace v4
