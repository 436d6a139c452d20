// The prefill GEMM kernels against the matvec kernels: every (row, column) result must be
// the same bits (prefill == decode), for row counts that are not multiples of the tile,
// column counts 1.., row lengths with a tail block (plain Q4_0 / Q8_0), row ranges that
// start inside a tile (thread splits) and column counts past one L2 panel. Values against the reference: test_fast_kernels.cpp (m >= 4 there
// runs through the GEMM).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "backends/cpu/cpu_features.h"
#include "backends/cpu/dot_kernels.h"
#include "backends/cpu/gemm_kernels.h"
#include "lib/core/dtype.h"

using namespace v4;

namespace {

struct GemmCase {
  DType t;
  int64_t k, n, m;
};

// Runs the GEMM over [0, split) and [split, n) and the matvec kernel per (row, column);
// returns the number of results whose bits differ.
int64_t mismatches(const GemmCase& c, int64_t split) {
  const cpu::DotKernel* dot = cpu::find_dot_kernel(c.t);
  const cpu::GemmKernel* gemm = cpu::find_gemm_kernel(c.t);
  const size_t ws = row_bytes(c.t, c.k);
  std::vector<float> wf(c.k * c.n), x(c.k * c.m);
  for (size_t i = 0; i < wf.size(); ++i) wf[i] = std::sin(0.37f * i + 0.1f * (i % 13)) * 0.5f;
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.011f * i + 1.0f) * (1 + i % 5);
  // A block of zeros exercises a zero activation scale.
  for (int i = 0; i < 32 && c.k * c.m > 96; ++i) x[64 + i] = 0.0f;
  std::vector<uint8_t> w(ws * c.n);
  traits(c.t).from_f32(wf.data(), w.data(), c.k * c.n);

  // Float weights read the f32 rows as they are.
  const bool f32 = dot->act == cpu::ActFormat::f32;
  const size_t vs = f32 ? c.k * sizeof(float) : cpu::act_row_bytes(dot->act, c.k);
  const size_t gs = gemm->act_row_bytes(c.k);
  std::vector<uint8_t> xv(vs * c.m), xg(gs * c.m);
  for (int64_t j = 0; j < c.m; ++j) {
    if (f32) {
      std::memcpy(xv.data() + j * vs, x.data() + j * c.k, vs);
      std::memcpy(xg.data() + j * gs, x.data() + j * c.k, gs);
      continue;
    }
    cpu::act_quantizer(dot->act)(x.data() + j * c.k, xv.data() + j * vs, c.k);
    gemm->quantize_row(x.data() + j * c.k, xg.data() + j * gs, c.k);
  }
  std::vector<float> out(c.n * c.m, NAN);
  for (const auto& [r0, r1] : {std::pair<int64_t, int64_t>{0, split}, {split, c.n}}) {
    if (r0 >= r1) continue;
    const cpu::GemmArgs a{w.data(), ws, xg.data(), gs, out.data(), static_cast<size_t>(c.n),
                          c.k, c.m, r0, r1};
    gemm->gemm(a);
  }
  int64_t bad = 0;
  for (int64_t r = 0; r < c.n; ++r)
    for (int64_t j = 0; j < c.m; ++j) {
      float one;
      dot->dot(w.data() + r * ws, xv.data() + j * vs, vs, 1, c.k, &one);
      const float got = out[j * c.n + r];
      if (std::memcmp(&one, &got, sizeof one) != 0) ++bad;
    }
  return bad;
}

}  // namespace

TEST_CASE("GEMM kernels equal the matvec kernels bit for bit", "[cpu][kernels][gemm]") {
  for (DType t : {DType::Q4_0_X16, DType::Q8_0_X16, DType::Q4_0_R4, DType::Q8_0_R4, DType::Q4_0,
                  DType::Q8_0, DType::F16, DType::BF16, DType::F32, DType::Q4_K, DType::Q5_K,
                  DType::Q6_K}) {
    if (!cpu::find_gemm_kernel(t) || !cpu::find_dot_kernel(t)) {
      WARN("no GEMM kernel for " << type_name(t) << " on this CPU (" << cpu::cpu_kernel_family()
                                 << "): nothing to compare");
      continue;
    }
    // Plain blocks also take k = 32 and 96 (one block: only the 256-bit tail; three blocks:
    // one 512-bit step and the tail).
    // One, three and five blocks (plain: 32 values, R4: 128, X16: 512); plain blocks with
    // k = 32 run only the 256-bit tail, with 96 a 512-bit step and the tail.
    // Float rows: lengths with and without a 32-value step, a 16-value step and a scalar tail.
    const int64_t bs = traits(t).block_size;
    const std::vector<int64_t> ks = bs == 1 ? std::vector<int64_t>{16, 53, 96, 531}
                                            : std::vector<int64_t>{bs, bs * 3, bs * 5};
    for (int64_t k : ks)
      for (int64_t n : {1, 3, 6, 37})
        for (int64_t m : {1, 2, 3, 4, 5, 7, 13}) {
          const GemmCase c{t, k, n, m};
          for (int64_t split : {int64_t{0}, n / 2 + (n > 1), n}) {
            INFO(type_name(t) << " k=" << k << " rows=" << n << " cols=" << m << " split=" << split);
            REQUIRE(mismatches(c, split) == 0);
          }
        }
    // More columns than one L2 panel (512 KiB of activations: 2048 columns of k = 128 in the
    // q8r4x format, 3639 in the q8 format, 1024 f32 columns of k = 128, 963 q8k columns of
    // k = 256).
    const GemmCase wide{t, bs >= 256 ? bs : 128, 5, bs == 1 ? 1100 : 3700};
    INFO(type_name(t) << " wide panel");
    REQUIRE(mismatches(wide, 3) == 0);
  }
}

TEST_CASE("the q8r4x activation rows hold the q8r4 values", "[cpu][kernels][gemm]") {
  const int64_t k = 384;
  std::vector<float> x(k);
  for (int64_t i = 0; i < k; ++i) x[i] = std::sin(0.21f * i) * (i % 9 + 0.25f);
  std::vector<uint8_t> v(cpu::q8r4_row_bytes(k)), g(cpu::q8r4x_row_bytes(k));
  cpu::quantize_q8r4_row(x.data(), v.data(), k);
  cpu::quantize_q8r4x_row(x.data(), g.data(), k, 3);
  const int64_t groups = k / 128;
  const auto* vd = reinterpret_cast<const float*>(v.data() + groups * 128);
  const auto* vsum = reinterpret_cast<const int32_t*>(v.data() + groups * 144);
  for (int64_t gi = 0; gi < groups; ++gi) {
    const uint8_t* o = g.data() + gi * 256;
    CHECK(std::memcmp(o, v.data() + gi * 128, 128) == 0);
    int32_t corr[16];
    float d[16];
    std::memcpy(corr, o + 128, sizeof corr);
    std::memcpy(d, o + 192, sizeof d);
    for (int l = 0; l < 16; ++l) {
      INFO("group " << gi << " lane " << l);
      CHECK(d[l] == vd[gi * 4 + l / 4]);
      CHECK(corr[l] == (l % 4 == 0 ? -vsum[gi * 4 + l / 4] * 8 : 0));
    }
  }
}
