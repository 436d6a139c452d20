// v4: the command-line front end of v4engine. Each subcommand lives in its own file
// (cmd_*.cpp); this file wires them into one CLI11 app and maps errors to exit codes:
// 0 success, 1 runtime error ("v4: error: ..." on stderr), 2 usage error.
#include <cstdio>
#include <exception>
#include <string>

#include "common.h"

namespace {

std::string usage_failure(const CLI::App* app, const CLI::Error& e) {
  // Help of the selected subcommand (CLI11 delegates), on stderr, after the error line.
  return std::string("v4: error: ") + e.what() + "\n" + app->help();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace v4::cli;
  CLI::App app{"v4engine: run, inspect and chat with LLMs (GGUF models)", "v4"};
  app.set_version_flag("--version", std::string(v4_version()), "Print the version and exit");
  app.require_subcommand(1);
  app.failure_message(usage_failure);

  Action action;
  register_run(app, action);
  register_chat(app, action);
  register_info(app, action);
  register_tokenize(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return kExitUsage;
  }
  if (!action) return fail("no subcommand given", kExitUsage);
  try {
    return action();
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
