// The host/device shared math of lib/core/device_math, run on the CPU: per-element block
// dequantisation against the reference dequantisers bit for bit, the online-softmax merge
// against a plain softmax, and paged row addressing against KvView::row.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "lib/core/device_math/block_values.h"
#include "lib/core/device_math/kv_rows.h"
#include "lib/core/device_math/softmax_merge.h"
#include "lib/core/dtype.h"
#include "lib/core/kv_view.h"

using v4::DType;

namespace {

// A row of n elements of type t: random values quantised by the reference quantiser, then
// random bytes over the quantised bits (scales kept finite) so every bit pattern of the
// quants is reached, not only the ones the quantiser happens to produce.
std::vector<uint8_t> random_row(DType t, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = nd(rng);
  std::vector<uint8_t> q(v4::row_bytes(t, n));
  v4::traits(t).from_f32(x.data(), q.data(), n);
  return q;
}

void scramble_quants(DType t, std::vector<uint8_t>& q, uint32_t seed) {
  std::mt19937 rng(seed);
  const v4::TypeTraits& tt = v4::traits(t);
  if (!tt.quantized) return;
  // Byte ranges of each block holding quants (not f16/bf16 scales).
  size_t lo = 0, hi = tt.block_bytes;
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::FP8_B32:
      lo = 2;
      break;
    case DType::Q4_1:
    case DType::Q5_1:
      lo = 4;
      break;
    case DType::Q4_K:
    case DType::Q5_K:
      lo = 4;
      break;  // scales bytes too: any 6-bit pattern
    case DType::Q6_K:
      hi = tt.block_bytes - 2;
      break;
    case DType::Q4_0_R4:
    case DType::Q8_0_R4:
      lo = 8;  // four f16 scales first
      break;
    case DType::Q4_0_X16:
    case DType::Q8_0_X16:
      lo = 32;  // sixteen f16 scales first
      break;
    default:
      break;
  }
  for (size_t b = 0; b < q.size() / tt.block_bytes; ++b)
    for (size_t i = lo; i < hi; ++i) q[b * tt.block_bytes + i] = static_cast<uint8_t>(rng());
  if (t == DType::FP8_B32)  // keep E4M3 values off the NaN code (NaN != NaN in the check)
    for (uint8_t& v : q)
      if ((v & 0x7f) == 0x7f) v = 0x7e;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

}  // namespace

TEST_CASE("device_math: row_value equals the reference dequantiser bit for bit", "[device_math]") {
  const DType types[] = {DType::F32,     DType::F16,     DType::BF16,     DType::Q8_0,
                         DType::Q4_0,    DType::Q4_1,    DType::Q5_0,     DType::Q5_1,
                         DType::Q4_K,    DType::Q5_K,    DType::Q6_K,     DType::FP8_B32,
                         DType::Q4_0_R4, DType::Q8_0_R4, DType::Q4_0_X16, DType::Q8_0_X16};
  for (DType t : types) {
    for (int scrambled = 0; scrambled < 2; ++scrambled) {
      INFO(v4::type_name(t) << (scrambled ? " (scrambled quants)" : ""));
      REQUIRE(v4::dm::row_value_supported(t));
      const int64_t n = 1024;
      std::vector<uint8_t> q = random_row(t, n, 7u + static_cast<uint32_t>(t));
      if (scrambled) scramble_quants(t, q, 99u);
      std::vector<float> ref(static_cast<size_t>(n));
      v4::traits(t).to_f32(q.data(), ref.data(), n);
      int mismatches = 0;
      for (int64_t i = 0; i < n; ++i)
        if (!same_bits(v4::dm::row_value(t, q.data(), i), ref[static_cast<size_t>(i)]))
          ++mismatches;
      CHECK(mismatches == 0);
    }
  }
}

template <DType T>
int decode8_mismatches(const std::vector<uint8_t>& q, const std::vector<float>& ref) {
  int bad = 0;
  for (size_t i0 = 0; i0 < ref.size(); i0 += 8) {
    float out[8];
    v4::dm::decode8<T>(q.data(), static_cast<int64_t>(i0), out);
    for (int e = 0; e < 8; ++e) bad += same_bits(out[e], ref[i0 + static_cast<size_t>(e)]) ? 0 : 1;
  }
  return bad;
}

TEST_CASE("device_math: decode8 equals the reference dequantiser bit for bit", "[device_math]") {
  using Fn = int (*)(const std::vector<uint8_t>&, const std::vector<float>&);
  const std::pair<DType, Fn> types[] = {{DType::F32, decode8_mismatches<DType::F32>},
                                        {DType::F16, decode8_mismatches<DType::F16>},
                                        {DType::BF16, decode8_mismatches<DType::BF16>},
                                        {DType::Q8_0, decode8_mismatches<DType::Q8_0>},
                                        {DType::Q4_0, decode8_mismatches<DType::Q4_0>},
                                        {DType::Q4_1, decode8_mismatches<DType::Q4_1>},
                                        {DType::Q5_0, decode8_mismatches<DType::Q5_0>},
                                        {DType::Q5_1, decode8_mismatches<DType::Q5_1>},
                                        {DType::Q4_K, decode8_mismatches<DType::Q4_K>},
                                        {DType::Q5_K, decode8_mismatches<DType::Q5_K>},
                                        {DType::Q6_K, decode8_mismatches<DType::Q6_K>},
                                        {DType::FP8_B32, decode8_mismatches<DType::FP8_B32>},
                                        {DType::Q4_0_R4, decode8_mismatches<DType::Q4_0_R4>},
                                        {DType::Q8_0_R4, decode8_mismatches<DType::Q8_0_R4>},
                                        {DType::Q4_0_X16, decode8_mismatches<DType::Q4_0_X16>},
                                        {DType::Q8_0_X16, decode8_mismatches<DType::Q8_0_X16>}};
  for (const auto& [t, mismatches] : types)
    for (int scrambled = 0; scrambled < 2; ++scrambled) {
      INFO(v4::type_name(t) << (scrambled ? " (scrambled quants)" : ""));
      std::vector<uint8_t> q = random_row(t, 1536, 11u + static_cast<uint32_t>(t));
      if (scrambled) scramble_quants(t, q, 5u);
      std::vector<float> ref(1536);
      v4::traits(t).to_f32(q.data(), ref.data(), 1536);
      CHECK(mismatches(q, ref) == 0);
    }
}

TEST_CASE("device_math: E4M3 elements and every 8-bit code", "[device_math]") {
  for (int c = 0; c < 256; ++c) {
    const auto b = static_cast<uint8_t>(c);
    float ref;
    v4::traits(DType::F8_E4M3).to_f32(&b, &ref, 1);
    const float got = v4::dm::row_value(DType::F8_E4M3, &b, 0);
    if (std::isnan(ref))
      CHECK(std::isnan(got));
    else
      CHECK(same_bits(got, ref));
  }
  CHECK_FALSE(v4::dm::row_value_supported(DType::Q2_K));
}

TEST_CASE("device_math: online softmax parts merge to the plain softmax", "[device_math]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  const int n_rows = 37, dim = 5;
  std::vector<float> score(n_rows), v(n_rows * dim);
  for (float& s : score) s = nd(rng);
  for (float& x : v) x = nd(rng);

  // Reference: max-subtracted softmax, then the weighted sum in row order.
  float mx = score[0];
  for (float s : score) mx = std::max(mx, s);
  double sum = 0.0;
  for (float s : score) sum += std::exp(static_cast<double>(s - mx));
  std::vector<double> ref(dim, 0.0);
  for (int r = 0; r < n_rows; ++r)
    for (int e = 0; e < dim; ++e)
      ref[e] += std::exp(static_cast<double>(score[r] - mx)) / sum * v[r * dim + e];

  for (int split : {0, 1, 13, 36, 37}) {  // 0 and 37: one part is empty
    INFO("split at " << split);
    v4::dm::SoftmaxPart a, b;
    std::vector<float> acc_a(dim, 0.0f), acc_b(dim, 0.0f), out(dim);
    for (int r = 0; r < split; ++r)
      v4::dm::softmax_push(a, acc_a.data(), score[r], &v[r * dim], dim);
    for (int r = split; r < n_rows; ++r)
      v4::dm::softmax_push(b, acc_b.data(), score[r], &v[r * dim], dim);
    v4::dm::softmax_merge(a, acc_a.data(), b, acc_b.data(), dim);
    v4::dm::softmax_finish(a, acc_a.data(), out.data(), dim);
    CHECK(a.m == mx);
    for (int e = 0; e < dim; ++e) CHECK(out[e] == Approx(ref[e]).epsilon(1e-5).margin(1e-6));
  }
  v4::dm::SoftmaxPart empty;
  float acc = 0.0f, out = 1.0f;
  v4::dm::softmax_finish(empty, &acc, &out, 1);
  CHECK(out == 0.0f);
}

TEST_CASE("device_math: paged row addressing matches KvView::row", "[device_math]") {
  // Two sequences of logical pages, two groups whose blocks sit in different pool slots.
  const int32_t shift = 4, page_rows = 1 << shift;
  const uint32_t n_logical = 5, n_slots = 12;
  const uint32_t seq0[] = {3, 1, 4}, seq1[] = {0, 2};
  const uint32_t* pages[] = {seq0, seq1};
  const uint32_t block_slot[] = {7, 2,  9, 0, 11,  // group 0
                                 5, 10, 1, 3, 6};  // group 1
  const size_t row_b[] = {24, 40};
  std::vector<uint8_t> storage(n_slots * page_rows * 64);
  v4::KvComponentView comps[2];
  for (int c = 0; c < 2; ++c) {
    comps[c].base = storage.data() + c * page_rows * 24;  // components interleaved in a slot
    comps[c].row_bytes = row_b[c];
    comps[c].group = c;
  }
  v4::KvView kv;
  kv.page_rows = page_rows;
  kv.page_shift = shift;
  kv.comps = comps;
  kv.slot_bytes = page_rows * 64;
  kv.n_logical_pages = n_logical;
  kv.seq_pages = pages;
  kv.block_slot = block_slot;
  for (int c = 0; c < 2; ++c)
    for (int32_t s = 0; s < 2; ++s)
      for (int32_t pos = 0; pos < (s == 0 ? 48 : 32); ++pos) {
        INFO("comp " << c << " seq " << s << " pos " << pos);
        const uint8_t* got = v4::dm::kv_row_ptr(comps[c].base, kv.slot_bytes, row_b[c], pages[s],
                                                block_slot + c * n_logical, shift, pos);
        CHECK(got == kv.row(c, s, pos));
      }
  CHECK(v4::dm::kv_slot(seq0, block_slot + n_logical, shift, 17) == 10u);  // page 1 of group 1
}
