#include "lib/text/tokenizer.h"

#include <algorithm>

#include "lib/core/error.h"
#include "lib/text/bpe_tokenizer.h"
#include "lib/text/spm_tokenizer.h"

namespace v4 {

namespace {

// C isspace in the "C" locale, which is what llama.cpp's LSTRIP/RSTRIP use.
bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_special_type(TokenType t) {
  return t == TokenType::control || t == TokenType::user_defined || t == TokenType::unknown;
}

}  // namespace

Tokenizer::Tokenizer(const Vocab& v) : vocab_(v) {
  for (int32_t id = 0; id < vocab_.n_tokens(); ++id) {
    if (is_special_type(vocab_.type(id)) && !vocab_.tokens[static_cast<size_t>(id)].empty()) {
      special_order_.push_back(id);
    }
  }
  std::stable_sort(special_order_.begin(), special_order_.end(), [this](int32_t a, int32_t b) {
    return vocab_.tokens[static_cast<size_t>(a)].size() >
           vocab_.tokens[static_cast<size_t>(b)].size();
  });
  for (int32_t id : special_order_) {
    special_by_first_[static_cast<uint8_t>(vocab_.tokens[static_cast<size_t>(id)][0])].push_back(
        id);
  }
}

std::unique_ptr<Tokenizer> Tokenizer::create(const Vocab& v) {
  if (v.tokens.empty()) return nullptr;
  switch (v.kind) {
    case VocabKind::spm:
      return std::make_unique<SpmTokenizer>(v);
    case VocabKind::bpe:
      return std::make_unique<BpeTokenizer>(v);
    case VocabKind::none:
      break;
  }
  return nullptr;
}

std::string Tokenizer::piece(int32_t id, bool render_special) const {
  std::string r;
  append_piece(id, r, render_special);
  return r;
}

void Tokenizer::split_special(std::string_view text, bool parse_special,
                              std::vector<Fragment>& out) const {
  out.clear();
  if (text.empty()) return;
  auto active = [&](int32_t id) {
    return parse_special || vocab_.type(id) == TokenType::user_defined;
  };

  // Every occurrence of every active special token, as (id, position).
  std::vector<std::pair<size_t, size_t>> occ;
  for (size_t p = 0; p < text.size(); ++p) {
    const auto& bucket = special_by_first_[static_cast<uint8_t>(text[p])];
    for (int32_t id : bucket) {
      const std::string& t = vocab_.tokens[static_cast<size_t>(id)];
      if (!active(id) || text.compare(p, t.size(), t) != 0) continue;
      occ.emplace_back(static_cast<size_t>(id), p);
    }
  }
  if (occ.empty()) {
    out.push_back(Fragment{-1, 0, text.size()});
    return;
  }
  // Priority: longest text first, then lowest id (the order of special_order_).
  auto longer = [this](int32_t a, int32_t b) {
    const size_t la = vocab_.tokens[static_cast<size_t>(a)].size();
    const size_t lb = vocab_.tokens[static_cast<size_t>(b)].size();
    return la != lb ? la > lb : a < b;
  };
  std::sort(occ.begin(), occ.end(), [&](const auto& x, const auto& y) {
    const auto a = static_cast<int32_t>(x.first), b = static_cast<int32_t>(y.first);
    if (a != b) return longer(a, b);
    return x.second < y.second;
  });

  // Split the fragments token by token, as llama.cpp's tokenizer_st_partition does: each
  // token takes its leftmost non-overlapping occurrences inside the text fragments left by
  // the tokens before it.
  std::vector<Fragment> frags{Fragment{-1, 0, text.size()}};
  std::vector<Fragment> next;
  for (size_t g = 0; g < occ.size();) {
    const auto id = static_cast<int32_t>(occ[g].first);
    size_t g_end = g;
    while (g_end < occ.size() && occ[g_end].first == occ[g].first) ++g_end;
    const size_t len = vocab_.tokens[static_cast<size_t>(id)].size();
    const uint8_t strip = vocab_.strip_of(id);
    next.clear();
    size_t k = g;  // next candidate occurrence (positions ascend, and so do fragments)
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t cursor = f.begin;
      bool rest = true;
      for (;;) {
        while (k < g_end && occ[k].second < cursor) ++k;
        if (k == g_end || occ[k].second + len > f.end) break;
        const size_t p = occ[k].second;
        size_t left_end = p;
        if (strip & Vocab::kStripLeft) {
          while (left_end > cursor && is_ascii_space(text[left_end - 1])) --left_end;
        }
        if (left_end > cursor) next.push_back(Fragment{-1, cursor, left_end});
        next.push_back(Fragment{id, 0, 0});
        cursor = p + len;
        if (cursor >= f.end) {
          rest = false;
          break;
        }
        if (strip & Vocab::kStripRight) {
          while (cursor < f.end && is_ascii_space(text[cursor])) ++cursor;
        }
      }
      if (rest && cursor < f.end) next.push_back(Fragment{-1, cursor, f.end});
    }
    frags.swap(next);
    g = g_end;
  }
  out = std::move(frags);
}

void Tokenizer::tokenize(std::string_view text, bool add_bos, bool parse_special,
                         std::vector<int32_t>& out) const {
  check_usable();
  if (add_bos && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);
  std::vector<Fragment> frags;
  split_special(text, parse_special, frags);
  bool after_special = true;
  for (const Fragment& f : frags) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
    } else {
      encode(text.substr(f.begin, f.end - f.begin), after_special, out);
      after_special = false;
    }
  }
  if (add_bos && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
}

bool Tokenizer::append_special_piece(int32_t id, std::string& out, bool render_special) const {
  if (!vocab_.valid_id(id))
    fail(Status::invalid_arg, "token id {} is out of range (vocabulary has {} tokens)", id,
         vocab_.n_tokens());
  switch (vocab_.type(id)) {
    case TokenType::control:
    case TokenType::unknown:
    case TokenType::unused:
      if (render_special) out.append(vocab_.tokens[static_cast<size_t>(id)]);
      return true;
    case TokenType::user_defined:
      out.append(vocab_.tokens[static_cast<size_t>(id)]);
      return true;
    default:
      return false;
  }
}

}  // namespace v4
