// Small helpers shared by the unit tests.
#pragma once

#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "lib/core/error.h"

namespace v4test {

// The whole file (the test fails if it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// s cut at every occurrence of sep (an empty last part when s ends with sep).
inline std::vector<std::string> split_on(const std::string& s, const std::string& sep) {
  std::vector<std::string> parts;
  size_t pos = 0;
  for (;;) {
    const size_t hit = s.find(sep, pos);
    if (hit == std::string::npos) {
      parts.push_back(s.substr(pos));
      return parts;
    }
    parts.push_back(s.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
}

// The status of the v4::Error fn throws, or ok.
inline v4::Status status_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const v4::Error& e) {
    return e.status();
  }
  return v4::Status::ok;
}

}  // namespace v4test
