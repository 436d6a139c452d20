// Loading progress bar on stderr (only when stderr is a terminal).
#pragma once

#include <v4engine.h>

namespace v4::cli {

class ProgressBar {
 public:
  explicit ProgressBar(const char* label);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // For v4_model_params.progress / progress_user; null when stderr is not a terminal.
  v4_progress_fn callback() const;
  void* user() { return this; }

  void update(float fraction);
  // Ends the bar's line (called by the destructor too).
  void finish();

  // Erases the bar of the loading in progress, if any, so that a log line printed next
  // starts on a clean line; the next update redraws it.
  static void clear_active();

 private:
  const char* label_;
  bool enabled_;
  bool drawn_ = false;
  int last_percent_ = -1;
};

}  // namespace v4::cli
