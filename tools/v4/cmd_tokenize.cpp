// v4 tokenize: the token ids (and pieces) of a text, with only the vocabulary loaded.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace v4::cli {

namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string file;
  bool ids = false;
  bool no_bos = false;
  bool parse_special = false;
  bool verbose = false;
  CLI::Option* text_opt = nullptr;
};

// A piece on one line: control bytes, backslash and quote escaped.
std::string escape_piece(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\'':
        out += "\\'";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string piece_of(const v4_model* model, v4_token t) {
  std::string buf(64, '\0');
  size_t n = 0;
  v4_status st = v4_token_to_piece(model, t, true, buf.data(), buf.size(), &n);
  if (st == V4_ERR_BUFFER_TOO_SMALL) {
    buf.assign(n, '\0');
    st = v4_token_to_piece(model, t, true, buf.data(), buf.size(), &n);
  }
  if (st != V4_OK) return "<?>";
  buf.resize(n);
  return buf;
}

int tokenize_main(TokenizeOptions& o) {
  setup_logging(o.verbose);
  std::string text;
  if (!o.file.empty()) {
    if (!read_file(o.file, text)) return fail("cannot read '" + o.file + "'");
  } else if (o.text_opt->count() > 0) {
    text = o.text;
  } else {
    // Neither -p nor -f: the text comes from stdin.
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  ModelPtr model = load_model(o.model, true);
  if (!model) return kExitError;
  std::vector<v4_token> tokens;
  if (!tokenize(model.get(), text, !o.no_bos, o.parse_special, tokens)) return kExitError;
  if (o.ids) {
    std::string line;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) line += ' ';
      line += std::to_string(tokens[i]);
    }
    line += '\n';
    write_stdout(line.data(), line.size());
  } else {
    for (v4_token t : tokens) {
      std::printf("%d\t'%s'\n", t, escape_piece(piece_of(model.get(), t)).c_str());
    }
    std::fflush(stdout);
  }
  return kExitOk;
}

}  // namespace

void register_tokenize(CLI::App& app, Action& action) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Show the tokens of a text");
  cmd->add_option("-m,--model", o->model, "Model (or vocabulary-only) file")->required();
  o->text_opt = cmd->add_option("-p,--prompt", o->text, "Text to tokenize (default: stdin)");
  auto* f = cmd->add_option("-f,--file", o->file, "Read the text from a file (taken as is)");
  o->text_opt->excludes(f);
  cmd->add_flag("--ids", o->ids, "Print only the ids, space-separated");
  cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token");
  cmd->add_flag("--parse-special", o->parse_special, "Turn special-token text into tokens");
  cmd->add_flag("-v,--verbose", o->verbose, "Show the library's log");
  cmd->callback([o, &action] { action = [o] { return tokenize_main(*o); }; });
}

}  // namespace v4::cli
