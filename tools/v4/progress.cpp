#include "progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace v4::cli {

namespace {

bool on_progress(float fraction, void* user) {
  static_cast<ProgressBar*>(user)->update(fraction);
  return true;
}

// The bar being drawn (the tool loads one model at a time, on the main thread).
ProgressBar* g_active = nullptr;

}  // namespace

ProgressBar::ProgressBar(const char* label) : label_(label), enabled_(isatty(STDERR_FILENO)) {
  if (enabled_) g_active = this;
}

ProgressBar::~ProgressBar() {
  finish();
  if (g_active == this) g_active = nullptr;
}

void ProgressBar::clear_active() {
  if (g_active && g_active->drawn_) {
    std::fprintf(stderr, "\r\033[K");
    g_active->drawn_ = false;
    g_active->last_percent_ = -1;
  }
}

v4_progress_fn ProgressBar::callback() const { return enabled_ ? on_progress : nullptr; }

void ProgressBar::update(float fraction) {
  if (!enabled_) return;
  fraction = std::clamp(fraction, 0.0f, 1.0f);
  const int percent = static_cast<int>(fraction * 100.0f + 0.5f);
  if (percent == last_percent_) return;
  last_percent_ = percent;
  constexpr int kWidth = 40;
  const int filled = static_cast<int>(fraction * kWidth + 0.5f);
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
  bar[kWidth] = '\0';
  std::fprintf(stderr, "\r%s [%s] %3d%%", label_, bar, percent);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (drawn_) {
    // Erase the bar so the next messages start on a clean line.
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }
}

}  // namespace v4::cli
