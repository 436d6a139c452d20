// The K-quants Q4_K, Q5_K and Q6_K: GGUF layouts (256-value super-blocks) and ggml's
// reference quantisers without an importance matrix, reproduced bit for bit.
//
// Q4_K / Q5_K: each 32-value sub-block gets a scale and a minimum from a search over
// candidate inverse scales, each refined by weighted least squares (fit_scale_min, ggml's
// make_qkx2_quants; weights sqrt(mean x^2) + |x|); the 8 scales and 8 minimums are then
// quantised to 6 bits against the super-block's F16 d and dmin, and the values re-quantised
// against the stored scales. Q6_K: each 16-value sub-block's scale comes from 19 candidate
// scales with x^2 weights and a least-squares refit (fit_symmetric_scale, ggml's
// make_qx_quants with rmse_type 1); the 16 scales are stored as int8 against one F16 d.
//
// Bit-exactness needs the same F32 operations in the same order; every expression below
// keeps ggml's evaluation order, and rounding uses nearest_int (round half to even through
// the 1.5 * 2^23 trick). Inputs must be finite.
#include <cmath>
#include <cstring>

#include "lib/core/float_conv.h"
#include "lib/core/quant/quant.h"

#if defined(__clang__)
// A fused multiply-add changes rounding; the reference is computed without contraction (GCC
// contracts only in GNU modes; the build uses ISO C++20).
#pragma STDC FP_CONTRACT OFF
#endif

namespace v4::quant {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // below this a group counts as all zero

// Round to nearest, ties to even, for |v| < 2^22 (ggml's nearest_int).
inline int nearest_int(float v) {
  const float shifted = v + 12582912.0f;  // 1.5 * 2^23: the integer lands in the mantissa
  int32_t i;
  std::memcpy(&i, &shifted, 4);
  return (i & 0x007fffff) - 0x00400000;
}

inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Scale and minimum of n values at levels 0..nmax: x ~ scale * L + min with min <= 0.
// Returns the scale and stores -min in *neg_min; L gets the levels. Starts from the
// min/max grid, then tries inverse scales (rmin + rdelta * is + nmax) / (max - min) for
// is = 0..nstep, each with a weighted least-squares fit of scale and min, keeping the one
// of least weighted squared error. (ggml's make_qkx2_quants with use_mad = false.)
float fit_scale_min(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                    float* neg_min, uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *neg_min = -min;
    return 0.0f;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = fnmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(clamp_int(l, 0, nmax));
    float diff = scale * static_cast<float>(L[i]);
    diff = diff + min;
    diff = diff - x[i];
    diff = diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *neg_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    float num = rdelta * static_cast<float>(is);
    num = rmin + num;
    num = num + fnmax;
    iscale = num / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float fl = static_cast<float>(l);
      const float w = weights[i];
      const float wl = w * fl;
      sum_l += wl;
      sum_l2 += wl * fl;
      sum_xl += wl * x[i];
    }
    const float a = sum_w * sum_l2;
    const float b = sum_l * sum_l;
    const float D = a - b;
    if (D > 0) {
      const float s1 = sum_w * sum_xl;
      const float s2 = sum_x * sum_l;
      float this_scale = (s1 - s2) / D;
      const float m1 = sum_l2 * sum_x;
      const float m2 = sum_l * sum_xl;
      float this_min = (m1 - m2) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(Laux[i]);
        diff = diff + this_min;
        diff = diff - x[i];
        diff = diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *neg_min = -min;
  return scale;
}

// Symmetric scale of n values at levels -nmax..nmax-1 (stored as L + nmax), weights x^2:
// the grid of the signed absolute maximum, then inverse scales -(nmax + 0.1 is) / max for
// is = -9..9, each refit by least squares, keeping the one that explains most of sum w x^2.
// (ggml's make_qx_quants with rmse_type 1 and no importance weights.)
float fit_symmetric_scale(int n, int nmax, const float* x, int8_t* L) {
  float max = 0;
  float amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = -fnmax / max;
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float fl = static_cast<float>(l);
    const float w = x[i] * x[i];
    const float wx = w * x[i];
    sumlx += wx * fl;
    const float wl = w * fl;
    suml2 += wl * fl;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    float num = 0.1f * static_cast<float>(is);
    num = fnmax + num;
    iscale = -num / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float fl = static_cast<float>(l);
      const float w = x[i] * x[i];
      const float wx = w * x[i];
      sumlx += wx * fl;
      const float wl = w * fl;
      suml2 += wl * fl;
    }
    const float lhs = sumlx * sumlx;
    const float rhs = best * suml2;
    if (suml2 > 0 && lhs > rhs) {
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(nmax + clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q4_K/Q5_K first half: per-sub-block scale/min search, 6-bit scales and mins packed into
// `scales`, F16 d/dmin, then every value re-quantised against the stored scales. L gets
// the levels 0..nmax of the 256 values.
void k4_quantize_scales(const float* x, int nmax, float rmin, float rdelta, int nstep,
                        uint16_t* d_out, uint16_t* dmin_out, uint8_t* packed, uint8_t* L) {
  constexpr int kSub = kQK_K / 32;
  uint8_t Laux[32];
  float weights[32];
  float mins[kSub];
  float scales[kSub];
  float max_scale = 0;  // the min is subtracted, so scales are positive
  float max_min = 0;
  for (int j = 0; j < kSub; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] =
        fit_scale_min(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(packed, 0, 12);
  for (int j = 0; j < kSub; ++j) {
    // As ggml: the int goes through uint8_t (modular) before the ceiling of 63.
    uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
    uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
    ls = ls < 63 ? ls : 63;
    lm = lm < 63 ? lm : 63;
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      packed[j - 4] = static_cast<uint8_t>(packed[j - 4] | ((ls >> 4) << 6));
      packed[j] = static_cast<uint8_t>(packed[j] | ((lm >> 4) << 6));
    }
  }
  *d_out = f32_to_f16(max_scale / 63.f);
  *dmin_out = f32_to_f16(max_min / 63.f);
  const float d_all = f16_to_f32(*d_out);
  const float dmin_all = f16_to_f32(*dmin_out);
  for (int j = 0; j < kSub; ++j) {
    uint8_t sc, m;
    k4_scale_min(j, packed, &sc, &m);
    const float d = d_all * static_cast<float>(sc);
    if (d == 0.0f) continue;  // keeps the search's levels, as the reference does
    const float dm = dmin_all * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      const float v = (x[32 * j + ii] + dm) / d;
      L[32 * j + ii] = static_cast<uint8_t>(clamp_int(nearest_int(v), 0, nmax));
    }
  }
}

}  // namespace

// ---- Q4_K ------------------------------------------------------------------------------

void dequantize_q4_k(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ4_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = f16_to_f32(b[i].d);
    const float min = f16_to_f32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    float* y = dst + i * kQK_K;
    for (int j = 0, is = 0; j < kQK_K; j += 64, is += 2, q += 32) {
      uint8_t sc, m;
      k4_scale_min(is, b[i].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      k4_scale_min(is + 1, b[i].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) y[j + l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) y[j + 32 + l] = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void quantize_q4_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint8_t L[kQK_K];
    k4_quantize_scales(src + i * kQK_K, 15, -1.0f, 0.1f, 20, &b[i].d, &b[i].dmin, b[i].scales, L);
    uint8_t* q = b[i].qs;
    for (int j = 0; j < kQK_K; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

// ---- Q5_K ------------------------------------------------------------------------------

void dequantize_q5_k(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ5_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = f16_to_f32(b[i].d);
    const float min = f16_to_f32(b[i].dmin);
    const uint8_t* ql = b[i].qs;
    const uint8_t* qh = b[i].qh;
    float* y = dst + i * kQK_K;
    unsigned u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < kQK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      k4_scale_min(is, b[i].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      k4_scale_min(is + 1, b[i].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l)
        y[j + l] = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l)
        y[j + 32 + l] = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

void quantize_q5_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ5_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint8_t L[kQK_K];
    k4_quantize_scales(src + i * kQK_K, 31, -0.5f, 0.1f, 15, &b[i].d, &b[i].dmin, b[i].scales, L);
    uint8_t* qh = b[i].qh;
    uint8_t* ql = b[i].qs;
    std::memset(qh, 0, kQK_K / 8);
    unsigned m1 = 1, m2 = 2;
    for (int j = 0; j < kQK_K; j += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
      for (int l = 0; l < 32; ++l) {
        int l1 = L[j + l];
        if (l1 > 15) {
          l1 -= 16;
          qh[l] = static_cast<uint8_t>(qh[l] | m1);
        }
        int l2 = L[j + l + 32];
        if (l2 > 15) {
          l2 -= 16;
          qh[l] = static_cast<uint8_t>(qh[l] | m2);
        }
        ql[l] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
    }
  }
}

// ---- Q6_K ------------------------------------------------------------------------------

void dequantize_q6_k(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ6_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = f16_to_f32(b[i].d);
    const uint8_t* ql = b[i].ql;
    const uint8_t* qh = b[i].qh;
    const int8_t* sc = b[i].scales;
    float* y = dst + i * kQK_K;
    for (int j = 0; j < kQK_K; j += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void quantize_q6_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    int8_t L[kQK_K];
    float scales[kQK_K / 16];
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      const float scale = fit_symmetric_scale(16, 32, x + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      const float abs_scale = std::fabs(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&b[i], 0, sizeof(BlockQ6_K));
      b[i].d = f32_to_f16(0.0f);
      continue;
    }
    const float iscale = -128.f / max_scale;
    b[i].d = f32_to_f16(1 / iscale);
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      const int s = nearest_int(iscale * scales[ib]);
      b[i].scales[ib] = static_cast<int8_t>(s < 127 ? s : 127);
    }
    const float d_all = f16_to_f32(b[i].d);
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = d_all * static_cast<float>(b[i].scales[j]);
      if (d == 0.0f) continue;  // keeps the search's levels, as the reference does
      for (int ii = 0; ii < 16; ++ii) {
        const int l = clamp_int(nearest_int(x[16 * j + ii] / d), -32, 31);
        L[16 * j + ii] = static_cast<int8_t>(l + 32);
      }
    }
    uint8_t* ql = b[i].ql;
    uint8_t* qh = b[i].qh;
    for (int j = 0; j < kQK_K; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int L1 = L[j + l], L2 = L[j + l + 32], L3 = L[j + l + 64], L4 = L[j + l + 96];
        ql[l] = static_cast<uint8_t>((L1 & 0xF) | ((L3 & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((L2 & 0xF) | ((L4 & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((L1 >> 4) | ((L2 >> 4) << 2) | ((L3 >> 4) << 4) |
                                     ((L4 >> 4) << 6));
      }
    }
  }
}

}  // namespace v4::quant
