// The structs behind the C API's opaque handles, shared by the lib/api files.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lib/core/threadpool.h"
#include "lib/model/model.h"
#include "lib/runtime/context.h"
#include "lib/sample/sampler.h"
#include "lib/text/utf8_stream.h"
#include "v4engine.h"

struct v4_model {
  std::unique_ptr<v4::Model> impl;
  std::string arch_name;
  std::vector<std::string> meta_keys;
};

struct v4_context {
  std::unique_ptr<v4::Context> impl;
  v4_model* model;
  v4::Utf8Stream stream;  // for v4_generate
  std::string text;       // reused per token
};

struct v4_sampler {
  std::unique_ptr<v4::Sampler> impl;
};

struct v4_threadpool {
  std::unique_ptr<v4::ThreadPool> impl;
};

