#include "backends/vulkan/vk_ops.h"

#include <algorithm>
#include <cmath>

#include "lib/core/error.h"

namespace v4::vk {
namespace {

constexpr uint32_t kMaxGroups = 65535;
constexpr uint32_t kMatmulCols = 8;  // NCOLS in mul_mat.comp and mul_mat_dot.comp
constexpr uint32_t kTile = 32;       // TILE in mul_mat_tiled.comp
// From this many activation rows on, the tiled kernel wins: it decodes each weight element
// once per 32 rows instead of once per 8.
constexpr int64_t kTiledMinRows = 16;

// Rows equally spaced in memory (views and reshapes of contiguous tensors are), with
// f32/i32 elements packed inside a row.
bool uniform_rows(const Tensor& t) {
  return t.nb[2] == t.nb[1] * t.ne[1] && t.nb[3] == t.nb[2] * t.ne[2];
}
bool f32_rows(const Tensor* t) {
  return t && t->type == DType::F32 && t->nb[0] == 4 && uniform_rows(*t) && t->nb[1] % 4 == 0;
}
// Types the shaders decode (raw_read.glsl); others stay on the CPU.
const char* suffix(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::F8_E4M3: return "f8_e4m3";
    case DType::F8_E5M2: return "f8_e5m2";
    case DType::Q8_0: return "q8_0";
    case DType::Q4_0: return "q4_0";
    case DType::Q4_1: return "q4_1";
    case DType::Q5_0: return "q5_0";
    case DType::Q5_1: return "q5_1";
    case DType::Q4_K: return "q4_k";
    case DType::Q5_K: return "q5_k";
    case DType::Q6_K: return "q6_k";
    case DType::FP8_B32: return "fp8_b32";
    case DType::Q4_0_R4: return "q4_0_r4";  // the CPU's regrouped layouts (read load mode)
    case DType::Q8_0_R4: return "q8_0_r4";
    case DType::Q4_0_X16: return "q4_0_x16";
    case DType::Q8_0_X16: return "q8_0_x16";
    default: return nullptr;
  }
}
bool raw_type(DType t) { return suffix(t) != nullptr; }
uint32_t u32(int64_t v) { return static_cast<uint32_t>(v); }
uint32_t ceil_div(int64_t a, int64_t b) { return static_cast<uint32_t>((a + b - 1) / b); }

// Rows go to y, overflowing into z (65535 workgroups per dimension).
void row_groups(Dispatch& d, int64_t rows) {
  d.groups[1] = static_cast<uint32_t>(std::min<int64_t>(rows, kMaxGroups));
  d.groups[2] = ceil_div(rows, kMaxGroups);
}

// Weight rows go to x (rows_per_group each), overflowing into z.
void mul_mat_groups(Dispatch& d, int64_t weight_rows) {
  const int64_t groups = ceil_div(weight_rows, d.rows_per_group);
  d.groups[0] = static_cast<uint32_t>(std::min<int64_t>(groups, kMaxGroups));
  d.groups[2] = ceil_div(groups, kMaxGroups);
}

void set_f32(Dispatch& d, int slot, const Tensor* t) {
  d.bind[slot] = t;
  d.pc.stride[slot] = u32(t->nb[1] / 4);
}
void set_raw(Dispatch& d, int slot, const Tensor* t) {
  d.bind[slot] = t;
  d.raw[slot] = true;
  d.pc.stride[slot] = u32(t->nb[1]);
}

std::string variant(const char* base, const Features& f) {
  return f.subgroup_arith ? std::string(base) + "_sg" : std::string(base);
}

// Whether a mul_mat runs the packed int8 dot-product matvec (mul_mat_dot.comp, after the
// quantize_q8.comp pre-pass): a decode-sized mul_mat of a Q8_0 or Q4_0 layout on a device
// with integer dot products.
bool int_dot_matvec(const Tensor& n, const Features& f) {
  const DType w = n.src[0]->type;
  const bool q8_q4 = w == DType::Q8_0 || w == DType::Q4_0 || w == DType::Q4_0_R4 ||
                     w == DType::Q8_0_R4 || w == DType::Q4_0_X16 || w == DType::Q8_0_X16;
  return n.op == Op::mul_mat && f.integer_dot && q8_q4 && n.src[1]->n_rows() < kTiledMinRows;
}
// Words per q8 activation row: per block of 32, 8 words of levels and the f32 scale.
int64_t q8_row_words(int64_t k) { return k / 32 * 9; }

// Same formulas as the CPU reference (backends/cpu/ref_kernels.cpp).
void rope_constants(const RopeParams& p, PushConstants& pc) {
  pc.i[0] = u32(p.n_dims);
  pc.i[1] = u32(p.dim_offset);
  pc.i[2] = u32(static_cast<int32_t>(p.mode));
  pc.f[0] = p.freq_base;
  pc.f[1] = p.freq_scale;
  pc.f[2] = p.ext_factor;
  pc.f[3] = p.attn_factor;
  if (p.ext_factor != 0.0f) {
    const auto corr = [&](float n_rot) {
      return static_cast<float>(p.n_dims) *
             std::log(static_cast<float>(p.n_ctx_orig) / (n_rot * 2.0f * static_cast<float>(M_PI))) /
             (2.0f * std::log(p.freq_base));
    };
    pc.f[4] = std::max(0.0f, std::floor(corr(p.beta_fast)));
    pc.f[5] = std::min(static_cast<float>(p.n_dims - 1), std::ceil(corr(p.beta_slow)));
    pc.f[6] = 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
  }
}

}  // namespace

bool op_supported(const Tensor& n) {
  const Tensor* a = n.src[0];
  const Tensor* b = n.src[1];
  switch (n.op) {
    case Op::view: return true;
    case Op::add:
    case Op::mul:
    case Op::swiglu: return f32_rows(&n) && f32_rows(a) && f32_rows(b);
    case Op::scale:
    case Op::silu:
    case Op::rms_norm:
    case Op::softmax: return f32_rows(&n) && f32_rows(a);
    case Op::rope:
      return f32_rows(&n) && f32_rows(a) && b->type == DType::I32 && b->is_contiguous() &&
             (!n.src[2] || n.src[2]->is_contiguous()) && n.ne[3] == 1;
    case Op::get_rows:
      return raw_type(a->type) && uniform_rows(*a) && b->type == DType::I32 &&
             b->is_contiguous() && f32_rows(&n);
    case Op::mul_mat:
      return raw_type(a->type) && a->is_contiguous() && f32_rows(b) && f32_rows(&n) &&
             n.nb[1] * n.ne[1] == n.nb[2];
    case Op::copy:
      return raw_type(a->type) && uniform_rows(*a) &&
             (f32_rows(&n) || (n.type == DType::F16 && a->type == DType::F32 && n.ne[0] % 2 == 0 &&
                               n.nb[1] % 4 == 0 && uniform_rows(n)));
    default: return false;  // kv_store and attention stay on the CPU for now
  }
}

Dispatch plan_dispatch(const Tensor& n, const Features& f) {
  Dispatch d;
  PushConstants& pc = d.pc;
  pc.ne0 = u32(n.ne[0]);
  pc.nrows = u32(n.n_rows());
  pc.ne1 = u32(n.ne[1]);
  pc.ne2 = u32(n.ne[2]);
  const Tensor* a = n.src[0];
  const Tensor* b = n.src[1];
  set_f32(d, 3, &n);
  switch (n.op) {
    case Op::add:
    case Op::mul:
    case Op::scale:
    case Op::silu:
    case Op::swiglu: {
      d.shader = "elementwise";
      set_f32(d, 0, a);
      if (n.op == Op::add || n.op == Op::mul || n.op == Op::swiglu) {
        set_f32(d, 1, b);
        pc.nrows_b = u32(b->n_rows());
      }
      pc.op = n.op == Op::add ? 0 : n.op == Op::mul ? 1 : n.op == Op::scale ? 2 : n.op == Op::silu ? 3 : 4;
      pc.f[0] = n.fparam[0];
      d.groups[0] = ceil_div(n.ne[0], 256);
      row_groups(d, n.n_rows());
      break;
    }
    case Op::rms_norm:
    case Op::softmax:
      d.shader = variant(n.op == Op::rms_norm ? "rms_norm" : "softmax", f);
      set_f32(d, 0, a);
      pc.f[0] = n.fparam[0];
      pc.op = n.op == Op::softmax && n.iparam[0] != 0 ? 1 : 0;
      row_groups(d, n.n_rows());
      break;
    case Op::rope:
      d.shader = "rope";
      set_f32(d, 0, a);
      d.bind[1] = b;
      if (n.src[2]) {
        d.bind[2] = n.src[2];
        pc.op = 1;
      }
      rope_constants(*static_cast<const RopeParams*>(n.extra), pc);
      pc.i[3] = u32(n.ne[1]);
      d.groups[0] = ceil_div(n.ne[0], 128);
      row_groups(d, n.n_rows());
      break;
    case Op::get_rows:
      d.shader = std::string("get_rows_") + suffix(a->type);
      set_raw(d, 0, a);
      d.bind[1] = b;
      d.groups[0] = ceil_div(n.ne[0], 256);
      row_groups(d, n.n_rows());
      break;
    case Op::mul_mat: {
      const bool tiled = b->n_rows() >= kTiledMinRows;
      const bool dot = int_dot_matvec(n, f);
      d.shader = tiled ? std::string("mul_mat_tiled_") + suffix(a->type)
                 : dot ? variant((std::string("mul_mat_dot_") + suffix(a->type)).c_str(), f)
                       : variant((std::string("mul_mat_") + suffix(a->type)).c_str(), f) +
                             (f.small_storage() ? "_s" : "");
      set_raw(d, 0, a);
      set_f32(d, 1, b);
      if (dot) {  // reads the pre-pass's q8 rows (plan_quantize_q8) instead of b
        d.bind[1] = nullptr;
        d.kind[1] = Bind::scratch;
        pc.stride[1] = u32(q8_row_words(a->ne[0]));
      }
      pc.ne0 = u32(a->ne[0]);
      pc.i[0] = u32(a->ne[1]);
      pc.i[1] = u32(b->n_rows());
      d.rows_per_group = tiled ? kTile : 1;
      mul_mat_groups(d, a->ne[1]);
      d.groups[1] = ceil_div(b->n_rows(), tiled ? kTile : kMatmulCols);
      break;
    }
    case Op::copy:
      set_raw(d, 0, a);
      if (n.type == DType::F16) {
        d.shader = "copy_f32_f16";
        pc.stride[3] = u32(n.nb[1] / 4);  // words
        d.groups[0] = ceil_div(n.ne[0] / 2, 256);
      } else {
        d.shader = std::string("copy_") + suffix(a->type) + "_f32";
        d.groups[0] = ceil_div(n.ne[0], 256);
      }
      row_groups(d, n.n_rows());
      break;
    default: fail(Status::internal, "vulkan: op {} has no shader", op_name(n.op));
  }
  return d;
}

size_t mul_mat_dot_scratch_bytes(const Tensor& n, const Features& f) {
  if (!int_dot_matvec(n, f)) return 0;
  return static_cast<size_t>(q8_row_words(n.src[0]->ne[0]) * n.src[1]->n_rows()) * 4;
}

Dispatch plan_quantize_q8(const Tensor& n) {
  Dispatch d;
  const Tensor* b = n.src[1];
  d.shader = "quantize_q8";
  set_f32(d, 1, b);
  d.bind[3] = &n;  // a valid range for the unused bindings; the output is the scratch
  d.kind[3] = Bind::scratch;
  d.pc.ne0 = u32(b->ne[0]);
  d.pc.nrows = u32(b->n_rows());
  d.pc.stride[3] = u32(q8_row_words(b->ne[0]));
  d.groups[0] = ceil_div(b->ne[0] / 32, 128);
  row_groups(d, b->n_rows());
  return d;
}

std::vector<Dispatch> split_rows(const Tensor& node, const Dispatch& d, size_t max_bytes) {
  const Tensor* w = node.src[0];
  if ((node.op != Op::mul_mat && node.op != Op::get_rows) || w->nbytes() <= max_bytes) return {d};
  const int64_t rows_per = std::max<int64_t>(1, static_cast<int64_t>(max_bytes / w->nb[1]));
  std::vector<Dispatch> out;
  for (int64_t r0 = 0; r0 < w->ne[1]; r0 += rows_per) {
    const int64_t r1 = std::min(w->ne[1], r0 + rows_per);
    Dispatch c = d;
    c.extra[0] = static_cast<size_t>(r0) * w->nb[1];
    if (node.op == Op::mul_mat) {
      c.extra[3] = static_cast<size_t>(r0) * sizeof(float);  // output column r0
      c.pc.i[0] = u32(r1 - r0);
      mul_mat_groups(c, r1 - r0);
    } else {
      c.pc.op = 1;  // get_rows: only ids in [i2, i3)
      c.pc.i[2] = u32(r0);
      c.pc.i[3] = u32(r1);
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace v4::vk
