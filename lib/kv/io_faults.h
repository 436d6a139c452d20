// Fault-injection seam for the disk tier (tests). The store passes every completion through
// filter() before looking at it, so an injected ENOSPC, EIO or short transfer runs exactly the
// error-handling code a real one would. Each countdown fires once: N means "let N completions of
// that kind through, then fault the next one"; -1 means never.
#pragma once

#include <cerrno>
#include <cstring>

namespace v4 {

struct IoFaults {
  int fail_write_after = -1;  // then one write completes with -errno_value
  int fail_read_after = -1;   // then one read completes with -errno_value
  int errno_value = EIO;      // ENOSPC, EIO, EACCES, ...
  // Then one read moves only half its bytes plus one (unaligned, so an O_DIRECT store must resubmit
  // from an aligned offset); the rest of its buffer is overwritten, as it was never transferred.
  int short_read_after = -1;
  // Then one read returns 0 bytes, as from a truncated file (an error).
  int eof_read_after = -1;
  // Opening with O_DIRECT fails with EINVAL, as on a filesystem without direct I/O.
  bool refuse_direct = false;
  // Every request sent with O_DIRECT fails with EINVAL, as on filesystems that accept the flag at
  // open but not for I/O (the store must switch to buffered I/O).
  bool refuse_direct_io = false;
  int injected = 0;  // faults applied so far

  // The result the store should see for a completion that returned `res` (bytes or -errno) for a
  // request of `len` bytes at `buf`, sent with O_DIRECT or not.
  int filter(bool is_write, int res, unsigned len, unsigned char* buf, bool direct) {
    if (res < 0) return res;
    if (direct && refuse_direct_io) {
      ++injected;
      return -EINVAL;
    }
    if (is_write) return fire(fail_write_after) ? -errno_value : res;
    if (fire(fail_read_after)) return -errno_value;
    if (fire(eof_read_after)) return 0;
    if (res == static_cast<int>(len) && len > 4096 && fire(short_read_after)) {
      const unsigned part = len / 2 + 1;
      std::memset(buf + part, 0xA5, len - part);
      return static_cast<int>(part);
    }
    return res;
  }

 private:
  bool fire(int& countdown) {
    if (countdown < 0) return false;
    if (countdown > 0) {
      --countdown;
      return false;
    }
    countdown = -1;
    ++injected;
    return true;
  }
};

}  // namespace v4
