#include "backends/cpu/dot_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backends/cpu/cpu_features.h"
#include "backends/cpu/fast_attention.h"
#include "backends/cpu/fast_elementwise.h"
#include "backends/cpu/gemm_kernels.h"
#include "lib/core/kv_view.h"
#include "lib/core/quant/repack.h"

namespace v4::cpu {

void quantize_q8_row_scalar(const float* x, uint8_t* out, int64_t k) {
  auto* q = reinterpret_cast<int8_t*>(out);
  auto* d = reinterpret_cast<float*>(out + q8_scales_offset(k));
  for (int64_t b = 0; b < k / 32; ++b) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float dm = amax / 127.0f;
    const float id = dm != 0.0f ? 1.0f / dm : 0.0f;
    d[b] = dm;
    for (int j = 0; j < 32; ++j) q[b * 32 + j] = static_cast<int8_t>(std::nearbyint(x[b * 32 + j] * id));
  }
}

void quantize_q8_row(const float* x, uint8_t* out, int64_t k) {
#if defined(__x86_64__)
  if (cpu_features().avx2) return quantize_q8_row_avx2(x, out, k);
#endif
  quantize_q8_row_scalar(x, out, k);
}

namespace {

// The sum of one 32-value q8 block's values (the activation formats that re-centre unsigned
// weights or meet the K-quants' minimums carry it).
int32_t block_sum(const int8_t* q) {
  int32_t s = 0;
  for (int e = 0; e < 32; ++e) s += q[e];
  return s;
}

// One group of 128 values in q8r4 order: q[128] (first halves of the four blocks, then
// second halves), the four block scales and the four blocks' sums of q.
void quantize_q8r4_group(const float* x, int8_t* q, float* d, int32_t* sum) {
  uint8_t tmp[q8_scales_offset(128) + 16];  // one group in the q8 format
  quantize_q8_row(x, tmp, 128);
  const auto* tq = reinterpret_cast<const int8_t*>(tmp);
  const auto* td = reinterpret_cast<const float*>(tmp + q8_scales_offset(128));
  for (int b = 0; b < 4; ++b) {
    for (int i = 0; i < 16; ++i) {
      q[16 * b + i] = tq[32 * b + i];
      q[64 + 16 * b + i] = tq[32 * b + 16 + i];
    }
    d[b] = td[b];
    sum[b] = block_sum(tq + 32 * b);
  }
}

}  // namespace

void quantize_q8r4_row(const float* x, uint8_t* out, int64_t k) {
  const int64_t groups = k / 128;
  auto* q = reinterpret_cast<int8_t*>(out);
  auto* d = reinterpret_cast<float*>(out + groups * 128);
  auto* sum = reinterpret_cast<int32_t*>(out + groups * 144);
  for (int64_t g = 0; g < groups; ++g) quantize_q8r4_group(x + g * 128, q + g * 128, d + g * 4, sum + g * 4);
}

void quantize_q8r4x_row(const float* x, uint8_t* out, int64_t k, int shift) {
  for (int64_t g = 0; g < k / 128; ++g) {
    uint8_t* o = out + g * 256;
    float d[4];
    int32_t sum[4];
    quantize_q8r4_group(x + g * 128, reinterpret_cast<int8_t*>(o), d, sum);
    int32_t corr[16] = {};
    float dl[16];
    for (int b = 0; b < 4; ++b) {
      // Shift as unsigned: the same bits as the matvec kernel's vpslld of the sum.
      corr[4 * b] = static_cast<int32_t>(0u - (static_cast<uint32_t>(sum[b]) << shift));
      for (int i = 0; i < 4; ++i) dl[4 * b + i] = d[b];
    }
    std::memcpy(o + 128, corr, sizeof corr);
    std::memcpy(o + 192, dl, sizeof dl);
  }
}

void quantize_q8x16_row(const float* x, uint8_t* out, int64_t k) {
  constexpr size_t kSo = q8_scales_offset(512);
  uint8_t tmp[kSo + 16 * sizeof(float)];  // one super-group in the q8 format
  const auto* tq = reinterpret_cast<const int8_t*>(tmp);
  for (int64_t g = 0; g < k / 512; ++g) {
    uint8_t* o = out + g * 640;
    quantize_q8_row(x + g * 512, tmp, 512);
    int32_t nsum[16];
    for (int j = 0; j < 16; ++j) {
      nsum[j] = -block_sum(tq + 32 * j);
      for (int s = 0; s < 8; ++s)
        std::memcpy(o + 64 * s + 4 * j, tq + 32 * j + x16_step_start(s), 4);
    }
    std::memcpy(o + 512, nsum, sizeof nsum);
    std::memcpy(o + 576, tmp + kSo, 16 * sizeof(float));
  }
}

const char* act_format_name(ActFormat f) {
  switch (f) {
    case ActFormat::f32: return "f32";
    case ActFormat::q8: return "q8";
    case ActFormat::q8r4: return "q8r4";
    case ActFormat::q8x16: return "q8x16";
    case ActFormat::q8k: return "q8k";
    case ActFormat::q8q: return "q8q";
    case ActFormat::q8s: return "q8s";
  }
  return "?";
}

size_t act_row_bytes(ActFormat f, int64_t k) {
  switch (f) {
    case ActFormat::q8r4: return q8r4_row_bytes(k);
    case ActFormat::q8x16: return q8x16_row_bytes(k);
    case ActFormat::q8k: return q8k_row_bytes(k);
    case ActFormat::q8q: return q8q_row_bytes(k);
    case ActFormat::q8s: return q8s_row_bytes(k);
    default: return q8_row_bytes(k);
  }
}

ActQuantizeFn act_quantizer(ActFormat f) {
  switch (f) {
    case ActFormat::q8r4: return quantize_q8r4_row;
    case ActFormat::q8x16: return quantize_q8x16_row;
    case ActFormat::q8q: return quantize_q8q_row;
    case ActFormat::q8s: return quantize_q8s_row;
    case ActFormat::q8k: return quantize_q8k_row;
    default: return quantize_q8_row;
  }
}

void quantize_q8s_row(const float* x, uint8_t* out, int64_t k) {
  quantize_q8_row(x, out, k);
  const auto* q = reinterpret_cast<const int8_t*>(out);
  const auto* d = reinterpret_cast<const float*>(out + q8_scales_offset(k));
  auto* s = reinterpret_cast<float*>(out + q8_row_bytes(k));
  for (int64_t b = 0; b < k / 32; ++b) s[b] = d[b] * static_cast<float>(block_sum(q + 32 * b));
}

void quantize_q8k_row(const float* x, uint8_t* out, int64_t k) {
  constexpr size_t kSo = q8_scales_offset(256);
  uint8_t tmp[kSo + 8 * sizeof(float)];  // one super-block in the q8 format
  const auto* tq = reinterpret_cast<const int8_t*>(tmp);
  for (int64_t i = 0; i < k / 256; ++i) {
    uint8_t* o = out + i * 544;
    quantize_q8_row(x + i * 256, tmp, 256);
    float d[8];
    std::memcpy(d, tmp + kSo, sizeof d);
    float lane_d[64], sums[8];
    for (int v = 0; v < 4; ++v)
      for (int h = 0; h < 2; ++h) {
        const int j = kQ8kPairs[v][h];
        std::memcpy(o + 64 * v + 32 * h, tq + 32 * j, 32);
        for (int l = 0; l < 8; ++l) lane_d[16 * v + 8 * h + l] = d[j];
      }
    for (int j = 0; j < 8; ++j) sums[j] = d[j] * static_cast<float>(block_sum(tq + 32 * j));
    std::memcpy(o + 256, lane_d, sizeof lane_d);
    std::memcpy(o + 512, sums, sizeof sums);
  }
}

void quantize_q8q_row(const float* x, uint8_t* out, int64_t k) {
  constexpr size_t kSo = q8_scales_offset(64);
  uint8_t tmp[kSo + 2 * sizeof(float)];  // one quarter in the q8 format
  const auto* tq = reinterpret_cast<const int8_t*>(tmp);
  for (int64_t g = 0; g < k / 64; ++g) {
    uint8_t* o = out + g * 192;
    quantize_q8_row(x + g * 64, tmp, 64);
    float d[2];
    std::memcpy(d, tmp + kSo, sizeof d);
    int32_t start[16];
    float lane_d[16];
    for (int l = 0; l < 16; ++l) {
      start[l] = -32 * (tq[4 * l] + tq[4 * l + 1] + tq[4 * l + 2] + tq[4 * l + 3]);
      lane_d[l] = d[l / 8];
    }
    std::memcpy(o, tmp, 64);
    std::memcpy(o + 64, start, sizeof start);
    std::memcpy(o + 128, lane_d, sizeof lane_d);
  }
}

const DotKernel* find_dot_kernel(DType t) {
  const CpuFeatures& f = cpu_features();
#if defined(__x86_64__)
  if (f.avx512_vnni)
    if (const DotKernel* k = avx512_dot_kernel(t)) return k;
  if (f.avx2) return avx2_dot_kernel(t);
#else
  (void)f;
  (void)t;
#endif
  return nullptr;
}

const GemmKernel* find_gemm_kernel(DType t) {
  static const bool enabled = [] {
    const char* e = std::getenv("V4_CPU_GEMM");
    return !e || std::strcmp(e, "off") != 0;
  }();
  if (!enabled) return nullptr;
#if defined(__x86_64__)
  if (cpu_features().avx512_vnni) return avx512_gemm_kernel(t);
#else
  (void)t;
#endif
  return nullptr;
}

}  // namespace v4::cpu

namespace v4::cpu {

namespace {

// Row types and head sizes the vectorised kernels take.
bool attention_rows_ok(const Tensor& node) {
  const auto& kv = *static_cast<const KvView*>(node.pparam);
  const DType kt = kv.comps[node.iparam[0]].type, vt = kv.comps[node.iparam[1]].type;
  return node.src[0]->ne[0] % 8 == 0 && kt == vt &&
         (kt == DType::F32 || kt == DType::F16 || kt == DType::BF16 || kt == DType::FP8_KV);
}

bool avx512_attention_fits(const Tensor& node) {
  const int64_t hd = node.src[0]->ne[0], group = node.src[0]->ne[1] / node.iparam[2];
  int64_t padded = 1;
  while (padded < group) padded *= 2;
  return group <= kAvx512MaxGroup && hd <= kAvx512MaxHeadDim &&
         (hd * padded + 15) / 16 * 16 <= kAvx512QueryFloats;
}

}  // namespace

std::vector<std::pair<const char*, AttentionFn>> attention_kernels(const Tensor& node) {
  std::vector<std::pair<const char*, AttentionFn>> k;
#if defined(__x86_64__)
  if (attention_rows_ok(node) && cpu_features().avx2) k.emplace_back("avx2", attention_avx2);
  if (attention_rows_ok(node) && cpu_features().avx512 && avx512_attention_fits(node))
    k.emplace_back("avx512", attention_avx512);
#endif
  return k;
}

// (Called per attention node of every decode step: it must not allocate.)
AttentionFn fast_attention_kernel(const Tensor& node) {
  // V4_CPU_ATTENTION=avx2 keeps the AVX2 attention kernel (A/B runs of one binary; V4_CPU
  // caps every kernel family at once).
  static const bool avx512_allowed = [] {
    const char* e = std::getenv("V4_CPU_ATTENTION");
    return !e || std::strcmp(e, "avx2") != 0;
  }();
  if (!attention_rows_ok(node)) return nullptr;
#if defined(__x86_64__)
  if (avx512_allowed && cpu_features().avx512 && avx512_attention_fits(node)) return attention_avx512;
  if (cpu_features().avx2) return attention_avx2;
#endif
  return nullptr;
}

}  // namespace v4::cpu

namespace v4::cpu {

ElementwiseFn fast_elementwise_kernel(const Tensor& node) {
#if defined(__x86_64__)
  // SwiGLU of two f32 tensors of the same shape, rows contiguous.
  if (node.op == Op::swiglu && cpu_features().avx512 && node.type == DType::F32 &&
      node.src[0]->type == DType::F32 && node.src[1]->type == DType::F32 &&
      node.src[1]->n_rows() == node.n_rows() && node.src[0]->nb[0] == 4 && node.src[1]->nb[0] == 4 &&
      node.nb[0] == 4)
    return swiglu_avx512;
#else
  (void)node;
#endif
  return nullptr;
}

}  // namespace v4::cpu
