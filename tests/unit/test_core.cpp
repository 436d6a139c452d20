// lib/core: float formats, type traits, thread pool, graph shape checks.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "lib/core/dtype.h"
#include "lib/core/error.h"
#include "lib/core/float_conv.h"
#include "lib/core/graph.h"
#include "lib/core/threadpool.h"

using namespace v4;

TEST_CASE("f16 conversion is exact where representable and rounds to nearest even", "[core][float]") {
  // Every f16 bit pattern (except NaNs) survives f16 -> f32 -> f16.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
    REQUIRE(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))) == h);
  }
  CHECK(f16_to_f32(0x3c00) == 1.0f);
  CHECK(f16_to_f32(0xc000) == -2.0f);
  CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));
  CHECK(f32_to_f16(65504.0f) == 0x7bff);
  CHECK(f32_to_f16(70000.0f) == 0x7c00);               // overflow -> inf
  CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie -> even
  CHECK(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
  CHECK(std::isnan(f16_to_f32(f32_to_f16(NAN))));
}

TEST_CASE("bf16 conversion rounds to nearest even and keeps NaN", "[core][float]") {
  CHECK(bf16_to_f32(f32_to_bf16(1.0f)) == 1.0f);
  CHECK(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);   // tie -> even
  CHECK(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3f82);
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bf16_to_f32(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    REQUIRE(f32_to_bf16(f) == b);
  }
}

TEST_CASE("FP8 E4M3 covers its 254 finite values and saturates at 448", "[core][float]") {
  int finite = 0;
  for (uint32_t v = 0; v < 256; ++v) {
    const float f = fp8_e4m3_to_f32(static_cast<uint8_t>(v));
    if (std::isnan(f)) continue;
    ++finite;
    // -0 maps back to +0's sign-preserving pattern.
    REQUIRE(f32_to_fp8_e4m3(f) == v);
  }
  CHECK(finite == 254);
  CHECK(fp8_e4m3_to_f32(0x7e) == 448.0f);
  CHECK(fp8_e4m3_to_f32(0x01) == std::ldexp(1.0f, -9));
  CHECK(f32_to_fp8_e4m3(1000.0f) == 0x7e);
  CHECK(f32_to_fp8_e4m3(-1000.0f) == 0xfe);
  CHECK(f32_to_fp8_e4m3(1.0625f) == f32_to_fp8_e4m3(1.0f));  // tie -> even (1.0)
  CHECK(std::isnan(fp8_e4m3_to_f32(0x7f)));
}

TEST_CASE("FP8 E5M2 round trips and has infinities", "[core][float]") {
  for (uint32_t v = 0; v < 256; ++v) {
    const float f = fp8_e5m2_to_f32(static_cast<uint8_t>(v));
    if (std::isnan(f)) continue;
    REQUIRE(f32_to_fp8_e5m2(f) == v);
  }
  CHECK(std::isinf(fp8_e5m2_to_f32(0x7c)));
  CHECK(fp8_e5m2_to_f32(0x7b) == 57344.0f);
}

TEST_CASE("type traits use GGUF ids and block layouts", "[core][dtype]") {
  CHECK(static_cast<uint32_t>(DType::Q8_0) == 8);
  CHECK(static_cast<uint32_t>(DType::BF16) == 30);
  CHECK(traits(DType::Q8_0).block_size == 32);
  CHECK(traits(DType::Q8_0).block_bytes == 34);
  CHECK(traits(DType::Q4_0).block_bytes == 18);
  CHECK(traits(DType::Q4_K).block_bytes == 144);
  CHECK(row_bytes(DType::Q8_0, 64) == 68);
  CHECK(find_type(4) == nullptr);  // removed from GGUF long ago
  CHECK(find_type(123456) == nullptr);
  // Our FP8 types are far from GGUF's range and distinct.
  CHECK(static_cast<uint32_t>(DType::F8_E4M3) >= 16384);
  CHECK(DType::F8_E4M3 != DType::FP8_B32);
  DType t;
  CHECK(parse_type_name("q8_0", &t));
  CHECK(t == DType::Q8_0);
  CHECK_FALSE(parse_type_name("q9_9", &t));
}

TEST_CASE("quantised blocks round trip within their precision", "[core][dtype]") {
  std::vector<float> x(256);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * i) * (1.0f + i % 7);
  for (DType t : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::FP8_B32, DType::F8_E4M3}) {
    const TypeTraits& tt = traits(t);
    std::vector<uint8_t> q(row_bytes(t, 256));
    std::vector<float> y(256);
    tt.from_f32(x.data(), q.data(), 256);
    tt.to_f32(q.data(), y.data(), 256);
    double err = 0, ref = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      err += (x[i] - y[i]) * (x[i] - y[i]);
      ref += x[i] * x[i];
    }
    const double nmse = err / ref;
    INFO(tt.name << " nmse " << nmse);
    const double limit = t == DType::Q4_0 ? 1e-2 : t == DType::F8_E4M3 || t == DType::FP8_B32 ? 2e-3 : 1e-4;
    CHECK(nmse < limit);
    CHECK(nmse > 0.0);  // none of these formats is exact for this data
  }
}

TEST_CASE("Q4_0 follows GGUF's reference rounding", "[core][dtype]") {
  float x[32];
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i - 16);  // max |x| at x[0] = -16
  BlockQ4_0 b;
  traits(DType::Q4_0).from_f32(x, &b, 32);
  CHECK(f16_to_f32(b.d) == 2.0f);   // d = max / -8 = -16 / -8
  CHECK((b.qs[0] & 0x0f) == 0);     // -16 / 2 + 8 = 0
  float y[32];
  traits(DType::Q4_0).to_f32(&b, y, 32);
  CHECK(y[0] == -16.0f);
  CHECK(y[31] == 14.0f);  // 15 clamps to the top nibble 15 -> (15 - 8) * 2
}

TEST_CASE("the thread pool runs every share exactly once", "[core][threads]") {
  ThreadPool pool(3);
  CHECK(pool.size() == 3);
  for (int n : {1, 2, 3, 7}) {
    std::atomic<int> mask{0};
    struct Ctx {
      std::atomic<int>* mask;
    } ctx{&mask};
    for (int rep = 0; rep < 50; ++rep) {
      mask = 0;
      pool.run([](void* c, int ith, int nth) {
        static_cast<Ctx*>(c)->mask->fetch_add(1 << ith);
        (void)nth;
      }, &ctx, n);
      const int used = std::min(n, 3);
      REQUIRE(mask.load() == (1 << used) - 1);
    }
  }
}

TEST_CASE("graph builders check shapes", "[core][graph]") {
  Graph g;
  Tensor* a = g.input(DType::F32, 8, 4);
  Tensor* b = g.input(DType::F32, 7, 4);
  CHECK_THROWS_AS(g.add(a, b), Error);
  Tensor* w = g.input(DType::F32, 8, 3);
  Tensor* y = g.mul_mat(w, a);
  CHECK(y->ne[0] == 3);
  CHECK(y->ne[1] == 4);
  CHECK_THROWS_AS(g.reshape(a, 5, 5), Error);
  Tensor* r = g.reshape(a, 4, 2, 4);
  CHECK(r->ne[2] == 4);
  CHECK(g.nodes().size() == 2);
  CHECK(g.leaves().size() == 3);
}
