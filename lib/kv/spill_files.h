// Names of the KV spill files this process has open. DiskStore removes its file in its
// destructor; this registry also removes any file still listed when the process exits normally
// (exit() or returning from main without destroying a context), so no path that runs atexit
// handlers leaves a file behind.
#pragma once

#include <string>

namespace v4 {

void spill_file_created(const std::string& path);
void spill_file_removed(const std::string& path);

}  // namespace v4
