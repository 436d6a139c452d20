// The type table: ids, names, block sizes, and the reference conversions of each type,
// which live in lib/core/quant/ (one file per family).
#include "lib/core/dtype.h"

#include <cassert>
#include <cctype>
#include <string>

#include "lib/core/quant/quant.h"
#include "lib/core/quant/repack.h"

namespace v4 {
namespace {

using namespace quant;

const TypeTraits kTypes[] = {
    {DType::F32, "F32", 1, 4, false, dequantize_f32, quantize_f32},
    {DType::F16, "F16", 1, 2, false, dequantize_f16, quantize_f16},
    {DType::Q4_0, "Q4_0", 32, 18, true, dequantize_q4_0, quantize_q4_0},
    {DType::Q4_1, "Q4_1", 32, 20, true, dequantize_q4_1, quantize_q4_1},
    {DType::Q5_0, "Q5_0", 32, 22, true, dequantize_q5_0, quantize_q5_0},
    {DType::Q5_1, "Q5_1", 32, 24, true, dequantize_q5_1, quantize_q5_1},
    {DType::Q8_0, "Q8_0", 32, 34, true, dequantize_q8_0, quantize_q8_0},
    {DType::Q8_1, "Q8_1", 32, 36, true, nullptr, nullptr},
    {DType::Q2_K, "Q2_K", 256, 84, true, nullptr, nullptr},
    {DType::Q3_K, "Q3_K", 256, 110, true, nullptr, nullptr},
    {DType::Q4_K, "Q4_K", 256, 144, true, dequantize_q4_k, quantize_q4_k},
    {DType::Q5_K, "Q5_K", 256, 176, true, dequantize_q5_k, quantize_q5_k},
    {DType::Q6_K, "Q6_K", 256, 210, true, dequantize_q6_k, quantize_q6_k},
    {DType::Q8_K, "Q8_K", 256, 292, true, nullptr, nullptr},
    {DType::IQ2_XXS, "IQ2_XXS", 256, 66, true, nullptr, nullptr},
    {DType::IQ2_XS, "IQ2_XS", 256, 74, true, nullptr, nullptr},
    {DType::IQ3_XXS, "IQ3_XXS", 256, 98, true, nullptr, nullptr},
    {DType::IQ1_S, "IQ1_S", 256, 50, true, nullptr, nullptr},
    {DType::IQ4_NL, "IQ4_NL", 32, 18, true, nullptr, nullptr},
    {DType::IQ3_S, "IQ3_S", 256, 110, true, nullptr, nullptr},
    {DType::IQ2_S, "IQ2_S", 256, 82, true, nullptr, nullptr},
    {DType::IQ4_XS, "IQ4_XS", 256, 136, true, nullptr, nullptr},
    {DType::I8, "I8", 1, 1, false, nullptr, nullptr},
    {DType::I16, "I16", 1, 2, false, nullptr, nullptr},
    {DType::I32, "I32", 1, 4, false, nullptr, nullptr},
    {DType::I64, "I64", 1, 8, false, nullptr, nullptr},
    {DType::F64, "F64", 1, 8, false, nullptr, nullptr},
    {DType::IQ1_M, "IQ1_M", 256, 56, true, nullptr, nullptr},
    {DType::BF16, "BF16", 1, 2, false, dequantize_bf16, quantize_bf16},
    {DType::TQ1_0, "TQ1_0", 256, 54, true, nullptr, nullptr},
    {DType::TQ2_0, "TQ2_0", 256, 66, true, nullptr, nullptr},
    {DType::MXFP4, "MXFP4", 32, 17, true, nullptr, nullptr},
    {DType::F8_E4M3, "F8_E4M3", 1, 1, false, dequantize_e4m3, quantize_e4m3},
    {DType::F8_E5M2, "F8_E5M2", 1, 1, false, dequantize_e5m2, quantize_e5m2},
    {DType::FP8_B32, "FP8_B32", 32, 34, true, dequantize_fp8_b32, quantize_fp8_b32},
    {DType::Q4_0_R4, "Q4_0_R4", 128, 72, true, dequantize_q4_0_r4, quantize_q4_0_r4, true},
    {DType::Q8_0_R4, "Q8_0_R4", 128, 136, true, dequantize_q8_0_r4, quantize_q8_0_r4, true},
    {DType::Q4_0_X16, "Q4_0_X16", 512, 288, true, dequantize_q4_0_x16, quantize_q4_0_x16, true},
    {DType::Q8_0_X16, "Q8_0_X16", 512, 544, true, dequantize_q8_0_x16, quantize_q8_0_x16, true},
    {DType::FP8_KV, "FP8_KV", 32, 33, true, dequantize_fp8_kv, quantize_fp8_kv, true},
};

}  // namespace

const TypeTraits* find_type(uint32_t id) {
  for (const TypeTraits& t : kTypes)
    if (static_cast<uint32_t>(t.type) == id) return &t;
  return nullptr;
}

const TypeTraits& traits(DType t) {
  const TypeTraits* tt = find_type(static_cast<uint32_t>(t));
  assert(tt != nullptr);
  return *tt;
}

const char* type_name(DType t) {
  const TypeTraits* tt = find_type(static_cast<uint32_t>(t));
  return tt ? tt->name : "unknown";
}

uint32_t gguf_file_type_of(DType t) {
  switch (t) {
    case DType::F32:
      return 0;
    case DType::F16:
      return 1;
    case DType::Q4_0:
      return 2;
    case DType::Q4_1:
      return 3;
    case DType::Q8_0:
      return 7;
    case DType::Q5_0:
      return 8;
    case DType::Q5_1:
      return 9;
    case DType::Q4_K:
      return 15;
    case DType::Q5_K:
      return 17;
    case DType::Q6_K:
      return 18;
    case DType::BF16:
      return 32;
    default:
      return static_cast<uint32_t>(t);
  }
}

bool parse_type_name(std::string_view name, DType* out) {
  for (const TypeTraits& t : kTypes) {
    std::string_view n(t.name);
    if (n.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < n.size() && same; ++i)
      same = std::toupper(static_cast<unsigned char>(n[i])) ==
             std::toupper(static_cast<unsigned char>(name[i]));
    if (same) {
      *out = t.type;
      return true;
    }
  }
  return false;
}

}  // namespace v4
