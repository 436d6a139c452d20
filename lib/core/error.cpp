#include "lib/core/error.h"

namespace v4 {

const char* status_name(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::invalid_arg: return "invalid argument";
    case Status::io: return "I/O error";
    case Status::bad_format: return "bad file format";
    case Status::unsupported: return "unsupported";
    case Status::out_of_memory: return "out of memory";
    case Status::context_full: return "context full";
    case Status::aborted: return "aborted";
    case Status::cancelled: return "cancelled";
    case Status::no_device: return "no device";
    case Status::internal: return "internal error";
  }
  return "unknown status";
}

}  // namespace v4
