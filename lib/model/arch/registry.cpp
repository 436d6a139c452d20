#include "lib/core/error.h"
#include "lib/model/arch/arch.h"

namespace v4 {
namespace {

struct Entry {
  const char* name;
  std::unique_ptr<Architecture> (*make)(const gguf::File&);
};

// Adding an architecture: one file in lib/model/arch/ and one line here.
const Entry kArchitectures[] = {
    {"llama", make_llama},
};

}  // namespace

std::unique_ptr<Architecture> make_architecture(const gguf::File& file) {
  const auto name = file.get_string("general.architecture");
  if (!name)
    fail(Status::bad_format, "{}: key 'general.architecture' is missing; is this a model file?",
         file.path());
  std::string known;
  for (const Entry& e : kArchitectures) {
    if (*name == e.name) return e.make(file);
    known += known.empty() ? e.name : std::string(", ") + e.name;
  }
  fail(Status::unsupported, "{}: architecture '{}' is not supported (supported: {})", file.path(),
       *name, known);
}

}  // namespace v4
