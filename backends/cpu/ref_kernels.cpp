#include "backends/cpu/ref_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "lib/core/dtype.h"
#include "lib/core/kv_view.h"

namespace v4::cpu {
namespace {

struct Range {
  int64_t begin, end;
};
Range share(int64_t n, int ith, int nth) {
  return {n * ith / nth, n * (ith + 1) / nth};
}

const float* frow(const Tensor* t, int64_t r) {
  return reinterpret_cast<const float*>(static_cast<const uint8_t*>(t->data) + r * t->nb[1]);
}
float* frow_mut(const Tensor* t, int64_t r) {
  return reinterpret_cast<float*>(static_cast<uint8_t*>(t->data) + r * t->nb[1]);
}

void k_get_rows(const Tensor* node, int ith, int nth) {
  const Tensor* table = node->src[0];
  const auto* ids = static_cast<const int32_t*>(node->src[1]->data);
  const auto to_f32 = traits(table->type).to_f32;
  const Range r = share(node->ne[1], ith, nth);
  for (int64_t i = r.begin; i < r.end; ++i) {
    const auto* src = static_cast<const uint8_t*>(table->data) + ids[i] * table->nb[1];
    to_f32(src, frow_mut(node, i), table->ne[0]);
  }
}

// Dot product of a weight row (any type) with f32 activations, converted in chunks on
// the stack so nothing is allocated. Sums in element order.
float dot_row(const TypeTraits& tt, const uint8_t* w, const float* x, int64_t k) {
  if (tt.type == DType::F32) {
    const auto* wf = reinterpret_cast<const float*>(w);
    float sum = 0.0f;
    for (int64_t j = 0; j < k; ++j) sum += wf[j] * x[j];
    return sum;
  }
  constexpr int64_t kChunk = 512;  // the largest block (the X16 layouts' super-group)
  float tmp[kChunk];
  const int64_t blocks_per_chunk = std::max<int64_t>(1, kChunk / tt.block_size);
  float sum = 0.0f;
  for (int64_t j = 0; j < k;) {
    const int64_t n = std::min(k - j, blocks_per_chunk * tt.block_size);
    tt.to_f32(w + (j / tt.block_size) * tt.block_bytes, tmp, n);
    for (int64_t e = 0; e < n; ++e) sum += tmp[e] * x[j + e];
    j += n;
  }
  return sum;
}

void k_mul_mat(const Tensor* node, int ith, int nth) {
  const Tensor* w = node->src[0];
  const Tensor* x = node->src[1];
  const TypeTraits& tt = traits(w->type);
  const int64_t k = w->ne[0], n_out = w->ne[1], m = x->n_rows();
  // Split over weight rows so each thread streams its own part of the weights once.
  const Range r = share(n_out, ith, nth);
  for (int64_t n = r.begin; n < r.end; ++n) {
    const auto* wrow = static_cast<const uint8_t*>(w->data) + n * w->nb[1];
    for (int64_t j = 0; j < m; ++j) frow_mut(node, j)[n] = dot_row(tt, wrow, frow(x, j), k);
  }
}

template <class F>
void binary(const Tensor* node, int ith, int nth, F f) {
  const Tensor* a = node->src[0];
  const Tensor* b = node->src[1];
  const bool bcast = b->n_rows() == 1;
  const Range r = share(node->n_rows(), ith, nth);
  for (int64_t i = r.begin; i < r.end; ++i) {
    const float* x = frow(a, i);
    const float* y = frow(b, bcast ? 0 : i);
    float* o = frow_mut(node, i);
    for (int64_t j = 0; j < node->ne[0]; ++j) o[j] = f(x[j], y[j]);
  }
}

void k_add(const Tensor* node, int ith, int nth) {
  binary(node, ith, nth, [](float x, float y) { return x + y; });
}
void k_mul(const Tensor* node, int ith, int nth) {
  binary(node, ith, nth, [](float x, float y) { return x * y; });
}

template <class F>
void unary(const Tensor* node, int ith, int nth, F f) {
  const Range r = share(node->n_rows(), ith, nth);
  for (int64_t i = r.begin; i < r.end; ++i) {
    const float* x = frow(node->src[0], i);
    float* o = frow_mut(node, i);
    for (int64_t j = 0; j < node->ne[0]; ++j) o[j] = f(x[j]);
  }
}

void k_scale(const Tensor* node, int ith, int nth) {
  const float s = node->fparam[0];
  unary(node, ith, nth, [s](float x) { return x * s; });
}

float silu(float x) { return x * (1.0f / (1.0f + std::exp(-x))); }

void k_silu(const Tensor* node, int ith, int nth) { unary(node, ith, nth, silu); }
void k_swiglu(const Tensor* node, int ith, int nth) {
  binary(node, ith, nth, [](float g, float u) { return silu(g) * u; });
}

void k_rms_norm(const Tensor* node, int ith, int nth) {
  const int64_t n = node->ne[0];
  const float eps = node->fparam[0];
  const Range r = share(node->n_rows(), ith, nth);
  for (int64_t i = r.begin; i < r.end; ++i) {
    const float* x = frow(node->src[0], i);
    float* o = frow_mut(node, i);
    float ss = 0.0f;
    for (int64_t j = 0; j < n; ++j) ss += x[j] * x[j];
    const float s = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    for (int64_t j = 0; j < n; ++j) o[j] = s * x[j];
  }
}

// YaRN's ramp between the interpolated and extrapolated angle (1 = keep extrapolated).
float yarn_ramp(float low, float high, int i0) {
  const float y = (static_cast<float>(i0) / 2.0f - low) / std::max(0.001f, high - low);
  return 1.0f - std::min(1.0f, std::max(0.0f, y));
}

void yarn_corr_dims(const RopeParams& p, float dims[2]) {
  const auto corr = [&](float n_rot) {
    return static_cast<float>(p.n_dims) *
           std::log(static_cast<float>(p.n_ctx_orig) / (n_rot * 2.0f * static_cast<float>(M_PI))) /
           (2.0f * std::log(p.freq_base));
  };
  dims[0] = std::max(0.0f, std::floor(corr(p.beta_fast)));
  dims[1] = std::min(static_cast<float>(p.n_dims - 1), std::ceil(corr(p.beta_slow)));
}

// The rotation of pair i at position pos, scaled: (cos, sin) * mscale.
void rope_angles(const RopeParams& p, const float* factors, const float corr[2], float mscale_ext,
                 int32_t pos, float* cs) {
  for (int i = 0; i < p.n_dims / 2; ++i) {
    // Same form as llama2.c: theta = pos / base^(2i/n_dims).
    float freq = 1.0f / std::pow(p.freq_base, static_cast<float>(2 * i) / p.n_dims);
    if (factors) freq /= factors[i];
    const float theta_extrap = static_cast<float>(pos) * freq;
    float theta = theta_extrap * p.freq_scale;
    float mscale = p.attn_factor;
    if (p.ext_factor != 0.0f) {
      const float mix = yarn_ramp(corr[0], corr[1], 2 * i) * p.ext_factor;
      theta = theta * (1.0f - mix) + theta_extrap * mix;
      mscale *= mscale_ext;
    }
    cs[2 * i] = std::cos(theta) * mscale;
    cs[2 * i + 1] = std::sin(theta) * mscale;
  }
}

void k_rope(const Tensor* node, int ith, int nth) {
  const RopeParams& p = *static_cast<const RopeParams*>(node->extra);
  const auto* pos = static_cast<const int32_t*>(node->src[1]->data);
  const float* factors = node->src[2] ? static_cast<const float*>(node->src[2]->data) : nullptr;
  const int64_t head_dim = node->ne[0], n_head = node->ne[1], n_tok = node->ne[2];
  float corr[2] = {0.0f, 0.0f};
  if (p.ext_factor != 0.0f) yarn_corr_dims(p, corr);
  const float mscale_ext =
      p.ext_factor != 0.0f ? 1.0f + 0.1f * std::log(1.0f / p.freq_scale) : 1.0f;
  const int half = p.n_dims / 2;
  // The angles depend on the token, not the head: computed once per token (pow, sin and
  // cos were several percent of a prefill when done per head).
  thread_local std::vector<float> cs;
  cs.resize(2 * static_cast<size_t>(half));
  int64_t angles_of = -1;
  const Range r = share(n_tok * n_head, ith, nth);
  for (int64_t row = r.begin; row < r.end; ++row) {
    const int64_t t = row / n_head;
    if (t != angles_of) {
      rope_angles(p, factors, corr, mscale_ext, pos[t], cs.data());
      angles_of = t;
    }
    const float* x = frow(node->src[0], row);
    float* o = frow_mut(node, row);
    std::memcpy(o, x, head_dim * sizeof(float));
    for (int i = 0; i < half; ++i) {
      const float c = cs[2 * i], s = cs[2 * i + 1];
      const int64_t a = p.dim_offset + (p.mode == RopeMode::neox ? i : 2 * i);
      const int64_t b = a + (p.mode == RopeMode::neox ? half : 1);
      const float v0 = x[a], v1 = x[b];
      o[a] = v0 * c - v1 * s;
      o[b] = v0 * s + v1 * c;
    }
  }
}

void softmax_inplace(float* x, int64_t n) {
  float mx = x[0];
  for (int64_t j = 1; j < n; ++j) mx = std::max(mx, x[j]);
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = std::exp(x[j] - mx);
    sum += x[j];
  }
  for (int64_t j = 0; j < n; ++j) x[j] /= sum;
}

void k_softmax(const Tensor* node, int ith, int nth) {
  const float scale = node->fparam[0];
  const bool causal = node->iparam[0] != 0;
  const int64_t n = node->ne[0];
  const Range r = share(node->n_rows(), ith, nth);
  for (int64_t i = r.begin; i < r.end; ++i) {
    const float* x = frow(node->src[0], i);
    float* o = frow_mut(node, i);
    // Causal: row i of each matrix sees columns 0..i.
    const int64_t visible = causal ? std::min(n, (i % node->ne[1]) + 1) : n;
    for (int64_t j = 0; j < visible; ++j) o[j] = x[j] * scale;
    softmax_inplace(o, visible);
    for (int64_t j = visible; j < n; ++j) o[j] = 0.0f;
  }
}

void k_copy(const Tensor* node, int ith, int nth) {
  const Tensor* a = node->src[0];
  const auto to_f32 = traits(a->type).to_f32;
  const auto from_f32 = traits(node->type).from_f32;
  constexpr int64_t kChunk = 512;  // the largest block (the X16 layouts' super-group)
  float tmp[kChunk];
  const int64_t bs = traits(node->type).block_size;
  const int64_t step = std::max<int64_t>(bs, kChunk / bs * bs);
  const Range r = share(node->n_rows(), ith, nth);
  for (int64_t i = r.begin; i < r.end; ++i) {
    const auto* src = static_cast<const uint8_t*>(a->data) + i * a->nb[1];
    auto* dst = static_cast<uint8_t*>(node->data) + i * node->nb[1];
    if (a->type == DType::F32) {
      from_f32(reinterpret_cast<const float*>(src), dst, node->ne[0]);
      continue;
    }
    for (int64_t j = 0; j < node->ne[0]; j += step) {
      const int64_t n = std::min(step, node->ne[0] - j);
      to_f32(src + row_bytes(a->type, j), tmp, n);
      from_f32(tmp, dst + row_bytes(node->type, j), n);
    }
  }
}

void store_row(const KvView& kv, int comp, int32_t seq, int32_t pos, const float* x) {
  const KvComponentView& c = kv.comps[comp];
  traits(c.type).from_f32(x, kv.row(comp, seq, pos), c.row_elems);
  if (c.ring) std::memcpy(kv.ring_row(comp, seq, pos), x, static_cast<size_t>(c.row_elems) * 4);
}

void k_kv_store(const Tensor* node, int ith, int nth) {
  const KvView& kv = *static_cast<const KvView*>(node->pparam);
  const int kc = node->iparam[0], vc = node->iparam[1];
  const Range r = share(kv.n_tokens, ith, nth);
  for (int64_t i = r.begin; i < r.end; ++i) {
    const int32_t s = kv.tok_seq[i], p = kv.tok_pos[i];
    store_row(kv, kc, s, p, frow(node->src[0], i));
    store_row(kv, vc, s, p, frow(node->src[1], i));
  }
}

// A head may start inside a block (FP8 rows: 32 values per block, heads of 8), so the
// blocks covering it are converted and the head is found inside them.
const float* kv_head(const KvComponentView& c, const uint8_t* row, int64_t off, int64_t n,
                     float* tmp) {
  if (c.type == DType::F32) return reinterpret_cast<const float*>(row) + off;
  const int64_t bs = traits(c.type).block_size;
  const int64_t first = off / bs * bs, end = (off + n + bs - 1) / bs * bs;
  traits(c.type).to_f32(row + row_bytes(c.type, first), tmp, end - first);
  return tmp + (off - first);
}

void k_attention(const Tensor* node, int ith, int nth) {
  const KvView& kv = *static_cast<const KvView*>(node->pparam);
  const Tensor* q = node->src[0];
  const int kc = node->iparam[0], vc = node->iparam[1];
  const int64_t hd = q->ne[0], n_head = q->ne[1];
  const int64_t group = n_head / node->iparam[2];
  const float scale = node->fparam[0];
  float* att = kv.scratch + ith * kv.scratch_stride;
  float tmp[640];  // the blocks covering one head (head_dim <= 512 is checked at build)
  const Range r = share(kv.n_tokens * n_head, ith, nth);
  for (int64_t task = r.begin; task < r.end; ++task) {
    const int64_t t = task / n_head, h = task % n_head;
    const int32_t s = kv.tok_seq[t], p = kv.tok_pos[t];
    const int64_t off = (h / group) * hd;
    const float* qh = frow(q, t * n_head + h);
    for (int32_t j = 0; j <= p; ++j) {
      const float* kw = kv.window_row(kc, s, j, p);
      const float* k = kw ? kw + off : kv_head(kv.comps[kc], kv.row(kc, s, j), off, hd, tmp);
      float dot = 0.0f;
      for (int64_t e = 0; e < hd; ++e) dot += qh[e] * k[e];
      att[j] = dot * scale;
    }
    softmax_inplace(att, p + 1);
    float* o = frow_mut(node, t) + h * hd;
    std::fill(o, o + hd, 0.0f);
    for (int32_t j = 0; j <= p; ++j) {
      const float* vw = kv.window_row(vc, s, j, p);
      const float* v = vw ? vw + off : kv_head(kv.comps[vc], kv.row(vc, s, j), off, hd, tmp);
      for (int64_t e = 0; e < hd; ++e) o[e] += att[j] * v[e];
    }
  }
}

}  // namespace

KernelFn reference_kernel(const Tensor& node) {
  switch (node.op) {
    case Op::get_rows: return k_get_rows;
    case Op::mul_mat: return traits(node.src[0]->type).to_f32 ? k_mul_mat : nullptr;
    case Op::add: return k_add;
    case Op::mul: return k_mul;
    case Op::scale: return k_scale;
    case Op::rms_norm: return k_rms_norm;
    case Op::rope: return k_rope;
    case Op::softmax: return k_softmax;
    case Op::silu: return k_silu;
    case Op::swiglu: return k_swiglu;
    case Op::copy: return k_copy;
    case Op::kv_store: return k_kv_store;
    case Op::attention: return node.src[0]->ne[0] <= 512 ? k_attention : nullptr;
    default: return nullptr;
  }
}

}  // namespace v4::cpu
