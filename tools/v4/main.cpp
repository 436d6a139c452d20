// v4: the command-line front end of v4engine. Each subcommand lives in its own file
// (cmd_*.cpp); this file wires them into one CLI11 app and maps errors to exit codes:
// 0 success, 1 runtime error ("v4: error: ..." on stderr), 2 usage error.
#include <cstdio>
#include <exception>
#include <string>

#include "common.h"

namespace v4::cli {
void register_quantize(CLI::App& app, Action& action);    // cmd_quantize.cpp
void register_mkmodel(CLI::App& app, Action& action);     // cmd_mkmodel.cpp
void register_bench(CLI::App& app, Action& action);       // cmd_bench.cpp
void register_perplexity(CLI::App& app, Action& action);  // cmd_perplexity.cpp
}  // namespace v4::cli

namespace {

std::string usage_failure(const CLI::App* app, const CLI::Error& e) {
  // The usage line of the selected subcommand (CLI11's help delegates to it) and a pointer to
  // its --help, on stderr, after the error line.
  const std::string help = app->help();
  std::string usage;
  if (auto at = help.find("Usage:"); at != std::string::npos) {
    usage = help.substr(at, help.find('\n', at) - at) + "\n";
  }
  std::string cmd = "v4";
  if (auto subs = app->get_subcommands(); !subs.empty()) cmd += " " + subs.front()->get_name();
  return std::string("v4: error: ") + e.what() + "\n" + usage + "Run '" + cmd +
         " --help' for the options.\n";
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
  register_quantize(app, action);
  register_mkmodel(app, action);
  register_bench(app, action);
  register_perplexity(app, action);

  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      known = known || sub->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr,
                   "v4: error: unknown subcommand '%s' (one of: %s)\n"
                   "Run 'v4 --help' for the options.\n",
                   argv[1], names.c_str());
      return kExitUsage;
    }
  }
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
