// lib/kv/disk_store: the disk tier's I/O layer. Round trips, injected and real faults, checksum
// failures, unusable directories, and that no spill file outlives its store.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "lib/core/error.h"
#include "lib/kv/disk_bench.h"
#include "lib/kv/disk_store.h"

using namespace v4;
namespace fs = std::filesystem;

namespace {

constexpr long kTmpfsMagic = 0x01021994;

// A fresh directory on the real disk (the build tree: /tmp may be tmpfs, which would hide the
// O_DIRECT path), removed with everything in it at the end.
struct TempDir {
  std::string path;
  TempDir() {
    static std::atomic<int> n{0};
    path = fmt::format("{}/disk_store_tmp-{}-{}", V4_BUILD_TEST_DIR, ::getpid(), n++);
    fs::remove_all(path);
    fs::create_directories(path);
    struct statfs st {};
    REQUIRE(::statfs(path.c_str(), &st) == 0);
    if (static_cast<long>(st.f_type) == kTmpfsMagic)
      WARN("the build directory is on tmpfs; the O_DIRECT path is not what this run tests");
  }
  ~TempDir() {
    std::error_code ec;
    ::chmod(path.c_str(), 0700);
    fs::remove_all(path, ec);
  }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
    return out;
  }
};

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};

// A buffer whose data starts `misalign` bytes past a 4096 boundary.
struct Buffer {
  std::unique_ptr<uint8_t, FreeDeleter> mem;
  uint8_t* data;
  Buffer(size_t n, size_t misalign)
      : mem(static_cast<uint8_t*>(std::aligned_alloc(4096, (n + misalign + 4095) / 4096 * 4096))),
        data(mem.get() + misalign) {
    std::memset(data, 0xEE, n);
  }
};

// Compressible payloads repeat short runs; the others are random bytes.
std::vector<uint8_t> payload(size_t n, uint64_t seed, bool compressible) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < n; ++i)
    v[i] = compressible ? static_cast<uint8_t>((i / 64 + seed) % 5) : static_cast<uint8_t>(rng());
  return v;
}

DiskStoreOptions options(const TempDir& d, size_t slot_bytes, uint32_t n_slots) {
  DiskStoreOptions o;
  o.dir = d.path;
  o.slot_bytes = slot_bytes;
  o.n_slots = n_slots;
  return o;
}

// The message of the v4::Error that fn throws ("" if none).
template <class Fn>
std::string error_text(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void contains(const std::string& text, const std::string& part) {
  INFO(text);
  CHECK(text.find(part) != std::string::npos);
}

struct CapturedLog {
  std::vector<std::pair<int, std::string>> lines;
  Logger logger() {
    Logger l;
    l.fn = [](int level, const char* text, void* user) {
      static_cast<CapturedLog*>(user)->lines.emplace_back(level, text);
    };
    l.user = this;
    return l;
  }
};

// Writes slots [0, n) with payload(seed = slot + salt) from the given source misalignment.
void write_all(DiskStore& s, uint32_t n, uint64_t salt, size_t misalign,
               std::vector<std::unique_ptr<Buffer>>& keep) {
  for (uint32_t i = 0; i < n; ++i) {
    const auto p = payload(s.slot_bytes(), i + salt, i % 2 == 0);
    keep.push_back(std::make_unique<Buffer>(s.slot_bytes(), misalign));
    std::memcpy(keep.back()->data, p.data(), p.size());
    s.write(i, keep.back()->data);
  }
}

bool slot_matches(DiskStore& s, uint32_t slot, uint64_t seed, size_t misalign) {
  Buffer b(s.slot_bytes(), misalign);
  s.read(slot, b.data);
  s.wait();
  const auto p = payload(s.slot_bytes(), seed, slot % 2 == 0);
  return std::memcmp(b.data, p.data(), p.size()) == 0;
}

}  // namespace

TEST_CASE("Disk store: slots round-trip at any size, depth, alignment and compression",
          "[kv][disk]") {
  const size_t sizes[] = {4096, 3 * 8192, 1000, 5000, 65536 + 17};
  for (size_t slot_bytes : sizes) {
    for (bool compress : {false, true}) {
      for (uint32_t depth : {1u, 64u}) {
        for (size_t misalign : {size_t{0}, size_t{8}}) {
          INFO("slot " << slot_bytes << " compress " << compress << " depth " << depth
                       << " misalign " << misalign);
          TempDir d;
          auto o = options(d, slot_bytes, 37);
          o.compress = compress;
          o.queue_depth = depth;
          DiskStore s(o);
          std::vector<std::unique_ptr<Buffer>> srcs;
          write_all(s, 37, 0, misalign, srcs);
          s.wait();
          // Read everything back in a shuffled order, all queued at once.
          std::vector<uint32_t> order(37);
          for (uint32_t i = 0; i < 37; ++i) order[i] = i;
          std::shuffle(order.begin(), order.end(), std::mt19937(7));
          std::vector<std::unique_ptr<Buffer>> dsts;
          for (uint32_t slot : order) {
            dsts.push_back(std::make_unique<Buffer>(slot_bytes, misalign));
            s.read(slot, dsts.back()->data);
          }
          s.submit();
          s.wait();
          for (size_t k = 0; k < order.size(); ++k) {
            const auto p = payload(slot_bytes, order[k], order[k] % 2 == 0);
            REQUIRE(std::memcmp(dsts[k]->data, p.data(), slot_bytes) == 0);
          }
          const DiskStoreStats st = s.stats();
          CHECK(st.writes == 37);
          CHECK(st.reads == 37);
          const uint64_t raw = 37 * ((slot_bytes + 4095) / 4096 * 4096);
          // Half the slots compress to almost nothing, but only big slots save whole 4096 blocks.
          if (compress && s.direct_io() && slot_bytes >= 16384)
            CHECK(st.bytes_written < raw * 3 / 4);
          if (!compress && s.direct_io()) CHECK(st.bytes_written == raw);
        }
      }
    }
  }
}

TEST_CASE("Disk store: operations on one slot run in queue order", "[kv][disk]") {
  for (bool compress : {false, true}) {
    TempDir d;
    auto o = options(d, 8192, 4);
    o.compress = compress;
    DiskStore s(o);
    const auto a = payload(8192, 1, false), b = payload(8192, 2, true), c = payload(8192, 3, false);
    Buffer ra(8192, 0), rb(8192, 0), rc(8192, 0);
    s.write(2, a.data());
    s.read(2, ra.data);
    s.write(2, b.data());  // overwrites the slot after the read above
    s.read(2, rb.data);
    s.write(2, c.data());
    s.read(2, rc.data);
    s.wait();
    CHECK(std::memcmp(ra.data, a.data(), 8192) == 0);
    CHECK(std::memcmp(rb.data, b.data(), 8192) == 0);
    CHECK(std::memcmp(rc.data, c.data(), 8192) == 0);
  }
}

TEST_CASE("Disk store: the spill file is named, private to the store and removed", "[kv][disk]") {
  TempDir d;
  {
    DiskStore s1(options(d, 4096, 8));
    DiskStore s2(options(d, 4096, 8));
    CHECK(s1.path() != s2.path());
    const auto names = d.files();
    REQUIRE(names.size() == 2);
    for (const auto& n : names) {
      CHECK(n.rfind(fmt::format("v4kv-{}-", ::getpid()), 0) == 0);
      CHECK(n.size() > 4);
      CHECK(n.substr(n.size() - 4) == ".bin");
    }
    const auto p = payload(4096, 0, false);
    s1.write(0, p.data());
    s1.wait();
  }
  CHECK(d.files().empty());
}

TEST_CASE("Disk store: a process that exits without destroying its store leaves no file",
          "[kv][disk]") {
  TempDir d;
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto* leaked = new DiskStore(options(d, 4096, 4));
    const auto p = payload(4096, 0, false);
    leaked->write(0, p.data());
    leaked->wait();
    std::exit(fs::exists(leaked->path()) ? 0 : 3);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(d.files().empty());
}

TEST_CASE("Disk store: injected ENOSPC names slot, file and advice - the store keeps working",
          "[kv][disk]") {
  TempDir d;
  IoFaults f;
  f.fail_write_after = 3;
  f.errno_value = ENOSPC;
  auto o = options(d, 10000, 8);
  o.queue_depth = 1;  // completions in queue order, so slot 3 is the one that fails
  o.faults = &f;
  DiskStore s(o);
  std::vector<std::unique_ptr<Buffer>> srcs;
  write_all(s, 8, 0, 0, srcs);
  const std::string e = error_text([&] { s.wait(); });
  contains(e, "writing slot 3");
  contains(e, s.path());
  contains(e, std::strerror(ENOSPC));
  contains(e, "free space on " + d.path + " or lower --kv-disk-max");
  CHECK(f.injected == 1);
  CHECK(slot_matches(s, 2, 2, 0));
  CHECK(slot_matches(s, 4, 4, 0));
  contains(error_text([&] { slot_matches(s, 3, 3, 0); }), "slot 3");
  contains(error_text([&] { slot_matches(s, 3, 3, 0); }), "last write failed");
  // Writing it again brings it back.
  const auto p = payload(10000, 3, false);
  s.write(3, p.data());
  s.wait();
  CHECK(slot_matches(s, 3, 3, 0));
}

TEST_CASE("Disk store: injected EIO on a read is an error - the next read works", "[kv][disk]") {
  TempDir d;
  IoFaults f;
  auto o = options(d, 4096 * 4, 6);
  o.faults = &f;
  DiskStore s(o);
  std::vector<std::unique_ptr<Buffer>> srcs;
  write_all(s, 6, 0, 0, srcs);
  s.wait();
  f.fail_read_after = 1;
  f.errno_value = EIO;
  std::vector<std::unique_ptr<Buffer>> dsts;
  for (uint32_t i = 0; i < 6; ++i) {
    dsts.push_back(std::make_unique<Buffer>(s.slot_bytes(), 0));
    s.read(i, dsts.back()->data);
  }
  const std::string e = error_text([&] { s.wait(); });
  contains(e, "reading slot");
  contains(e, s.path());
  contains(e, std::strerror(EIO));
  contains(e, "dmesg");
  CHECK(f.injected == 1);
  for (uint32_t i = 0; i < 6; ++i) CHECK(slot_matches(s, i, i, 0));
}

TEST_CASE("Disk store: partial reads are resubmitted - a truncated read is an error",
          "[kv][disk]") {
  for (bool direct : {true, false}) {
    TempDir d;
    IoFaults f;
    f.refuse_direct = !direct;
    auto o = options(d, 65536 + 100, 3);
    o.faults = &f;
    o.queue_depth = 1;
    DiskStore s(o);
    std::vector<std::unique_ptr<Buffer>> srcs;
    write_all(s, 3, 0, 0, srcs);
    s.wait();
    f.short_read_after = 1;
    CHECK(slot_matches(s, 0, 0, 0));
    CHECK(slot_matches(s, 1, 1, 0));        // this one arrived in two parts
    CHECK(f.injected == (direct ? 1 : 2));  // (+1: the refused O_DIRECT)
    f.eof_read_after = 0;
    const std::string e = error_text([&] { slot_matches(s, 2, 2, 0); });
    contains(e, "short read of slot 2");
    contains(e, s.path());
    CHECK(slot_matches(s, 2, 2, 0));
  }
}

TEST_CASE("Disk store: a byte changed on disk fails the checksum", "[kv][disk]") {
  for (bool compress : {false, true}) {
    TempDir d;
    auto o = options(d, 20000, 4);
    o.compress = compress;
    DiskStore s(o);
    std::vector<std::unique_ptr<Buffer>> srcs;
    write_all(s, 4, 0, 0, srcs);  // slot 2 holds compressible data
    s.wait();
    // Behind the store's back: flip a byte inside slot 2's stored bytes.
    const int fd = ::open(s.path().c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    const off_t off = 2 * 20480 + 7;
    uint8_t byte = 0;
    REQUIRE(::pread(fd, &byte, 1, off) == 1);
    byte ^= 0x40;
    REQUIRE(::pwrite(fd, &byte, 1, off) == 1);
    REQUIRE(::fsync(fd) == 0);
    ::close(fd);
    const std::string e = error_text([&] { slot_matches(s, 2, 2, 0); });
    contains(e, "slot 2");
    contains(e, s.path());
    contains(e, "checksum");
    CHECK(slot_matches(s, 1, 1, 0));
    CHECK(slot_matches(s, 3, 3, 0));
  }
}

TEST_CASE("Disk store: bad slots and never-written slots are errors", "[kv][disk]") {
  TempDir d;
  DiskStore s(options(d, 4096, 4));
  Buffer b(4096, 0);
  CHECK(error_text([&] { s.read(4, b.data); }).find("slot 4") != std::string::npos);
  CHECK(error_text([&] { s.write(9, b.data); }).find("4 slots") != std::string::npos);
  s.read(1, b.data);
  const std::string e = error_text([&] { s.wait(); });
  contains(e, "slot 1");
  contains(e, "never written");
  s.write(1, b.data);
  s.read(1, b.data);
  s.wait();
}

TEST_CASE("Disk store: unusable directories fail clearly and leave no file", "[kv][disk]") {
  TempDir d;
  SECTION("missing") {
    auto o = options(d, 4096, 4);
    o.dir = d.path + "/no/such/dir";
    const std::string m = error_text([&] { DiskStore s(o); });
    contains(m, "cannot create KV spill file in " + o.dir);
    contains(m, std::strerror(ENOENT));
    contains(m, "--kv-disk");
  }
  SECTION("a path under a regular file") {
    const std::string file = d.path + "/plain";
    std::fclose(std::fopen(file.c_str(), "w"));
    auto o = options(d, 4096, 4);
    o.dir = file;
    const std::string m = error_text([&] { DiskStore s(o); });
    contains(m, "cannot create KV spill file in " + file);
    contains(m, std::strerror(ENOTDIR));
    CHECK(d.files().size() == 1);
  }
  SECTION("not writable") {
    if (::geteuid() == 0) {
      WARN("running as root, which ignores directory modes: the chmod 0500 case is not checked");
      return;
    }
    const std::string sub = d.path + "/ro";
    fs::create_directory(sub);
    REQUIRE(::chmod(sub.c_str(), 0500) == 0);
    auto o = options(d, 4096, 4);
    o.dir = sub;
    const std::string m = error_text([&] { DiskStore s(o); });
    ::chmod(sub.c_str(), 0700);
    contains(m, "cannot create KV spill file in " + sub);
    contains(m, std::strerror(EACCES));
    contains(m, "choose a writable directory with --kv-disk");
    CHECK(fs::is_empty(sub));
  }
}

// Refused at open (EINVAL from open) or only per request (EINVAL from each O_DIRECT read or
// write, with many requests in flight when the first one fails).
TEST_CASE("Disk store: refused O_DIRECT falls back to buffered I/O with one warning",
          "[kv][disk]") {
  for (bool at_open : {true, false}) {
    INFO("refused at open: " << at_open);
    TempDir d;
    IoFaults f;
    f.refuse_direct = at_open;
    f.refuse_direct_io = !at_open;
    CapturedLog log;
    Logger logger = log.logger();
    auto o = options(d, 8192, 16);
    o.faults = &f;
    o.log = &logger;
    o.compress = at_open;
    {
      DiskStore s(o);
      CHECK(s.direct_io() == !at_open);
      std::vector<std::unique_ptr<Buffer>> srcs;
      write_all(s, 16, 5, 0, srcs);
      s.wait();
      CHECK_FALSE(s.direct_io());
      for (uint32_t i = 0; i < 16; ++i) CHECK(slot_matches(s, i, i + 5, 1));
      CHECK(s.stats().writes == 16);
      CHECK(f.injected >= 1);
      CHECK(d.files().size() == 1);
    }
    REQUIRE(log.lines.size() == 1);
    CHECK(log.lines[0].first == static_cast<int>(LogLevel::warn));
    contains(log.lines[0].second, "O_DIRECT");
    contains(log.lines[0].second, d.path);
    CHECK(d.files().empty());
  }
}

TEST_CASE("Disk store: a full 1 MiB tmpfs gives ENOSPC and the store keeps working", "[kv][disk]") {
  TempDir d;
  const std::string mnt = d.path + "/small";
  fs::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0) {
    std::printf("SKIP: cannot mount a size-limited tmpfs (%s); needs root or CAP_SYS_ADMIN\n",
                std::strerror(errno));
    std::fflush(stdout);
    fs::remove_all(d.path);
    std::_Exit(77);
  }
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  CapturedLog log;
  Logger logger = log.logger();
  auto o = options(d, 65536, 32);  // 2 MiB of slots on a 1 MiB filesystem
  o.dir = mnt;
  o.queue_depth = 1;
  o.log = &logger;
  {
    DiskStore s(o);
    // Kernels before 6.6 refuse O_DIRECT on tmpfs: then this is the buffered path, warned once.
    std::printf("tmpfs: %s I/O\n", s.direct_io() ? "direct" : "buffered");
    CHECK(log.lines.size() == (s.direct_io() ? 0u : 1u));
    std::vector<std::unique_ptr<Buffer>> srcs;
    write_all(s, 32, 0, 0, srcs);
    const std::string e = error_text([&] { s.wait(); });
    contains(e, std::strerror(ENOSPC));
    contains(e, "free space on " + mnt + " or lower --kv-disk-max");
    // The slots written before the filesystem filled read back; a lost one says so.
    const auto reads_back = [&](uint32_t slot) {
      bool same = false;
      return error_text([&] { same = slot_matches(s, slot, slot, 0); }).empty() && same;
    };
    uint32_t good = 0;
    while (good < 32 && reads_back(good)) ++good;
    INFO("slots that fit: " << good);
    CHECK(good >= 8);
    CHECK(good <= 16);
    contains(error_text([&] { slot_matches(s, good, good, 0); }), "last write failed");
    // Overwriting a slot that already has space still works on the full filesystem.
    const auto p = payload(65536, 0, true);
    s.write(0, p.data());
    s.wait();
    CHECK(slot_matches(s, 0, 0, 0));
  }
  CHECK(fs::is_empty(mnt));
}

TEST_CASE("Disk read bench: reads back what it wrote and reports a rate", "[kv][disk]") {
  TempDir d;
  const DiskReadBench r = bench_disk_reads(d.path, 65536, 2 << 20, 8);
  CHECK(r.bytes == (2u << 20));
  CHECK(r.read_gbps > 0);
  CHECK(r.write_gbps > 0);
  CHECK(d.files().empty());
}

// By hand: V4_DISK_BENCH_DIR=/mnt/nvme build/tests/unit_tests "[.bench]" (optional
// V4_DISK_BENCH_SLOT bytes, V4_DISK_BENCH_MB, V4_DISK_BENCH_QD). Compare with bench/fio_read.sh.
TEST_CASE("Disk read bench: throughput on a chosen directory", "[.bench][kv][disk]") {
  const auto env = [](const char* name, const char* def) {
    const char* v = std::getenv(name);
    return std::string(v ? v : def);
  };
  TempDir d;
  const std::string dir = env("V4_DISK_BENCH_DIR", d.path.c_str());
  const size_t slot = std::stoull(env("V4_DISK_BENCH_SLOT", "262144"));
  const uint64_t total = std::stoull(env("V4_DISK_BENCH_MB", "1024")) << 20;
  const int qd = std::stoi(env("V4_DISK_BENCH_QD", "64"));
  const DiskReadBench r = bench_disk_reads(dir, slot, total, qd);
  std::printf(
      "{\"bench\":\"kv_disk\",\"slot_bytes\":%zu,\"queue_depth\":%d,\"bytes\":%llu,"
      "\"direct_io\":%s,\"write_gbps\":%.3f,\"read_gbps\":%.3f}\n",
      r.slot_bytes, r.queue_depth, static_cast<unsigned long long>(r.bytes),
      r.direct_io ? "true" : "false", r.write_gbps, r.read_gbps);
  CHECK(r.read_gbps > 0);
}
