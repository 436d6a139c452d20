// Element and block types. Ids are GGUF's (llama.cpp's ggml_type) for the types
// that format already has; types of ours sit far away from theirs (docs/FORMAT.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace v4 {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  // v4engine's own types.
  F8_E4M3 = 16384,  // raw OCP FP8 E4M3 elements
  F8_E5M2 = 16385,  // raw FP8 E5M2 elements
  FP8_B32 = 16386,  // FP8 weight block: 32 E4M3 values + one block scale (reserved)
  // In-memory layouts of ours, never stored in files: GGUF types regrouped four blocks at
  // a time for SIMD kernels (lib/core/quant/repack.cpp). Same bytes per row as the source.
  Q4_0_R4 = 16400,
  Q8_0_R4 = 16401,
  // The FP8 KV page row format (a layout of KV rows, never a weight type): blocks of 32
  // E4M3 values with one power-of-two (E8M0) scale; see docs/FORMAT.md.
  FP8_KV = 16402,
  // Q4_0 / Q8_0 with 16 blocks interleaved 4 bytes at a time, so that each 32-bit lane of
  // a 512-bit vector belongs to one block (lib/core/quant/repack.h). In memory only.
  Q4_0_X16 = 16403,
  Q8_0_X16 = 16404,
};

struct TypeTraits {
  DType type;
  const char* name;
  int64_t block_size;   // elements per block (1 for plain types)
  size_t block_bytes;   // bytes per block
  bool quantized;       // block format with scales
  // Reference conversions of n elements (n a multiple of block_size); null where the
  // engine cannot compute with this type yet.
  void (*to_f32)(const void* src, float* dst, int64_t n);
  void (*from_f32)(const float* src, void* dst, int64_t n);
  bool internal = false;  // an in-memory layout; a file using this id is rejected
};

// Traits for a type id, or nullptr for an id this build does not know.
const TypeTraits* find_type(uint32_t id);
// Traits for a known type (asserts it is known).
const TypeTraits& traits(DType t);
const char* type_name(DType t);
// llama.cpp's general.file_type (LLAMA_FTYPE) of a file whose matrices are mostly `t`
// (Q4_K and Q5_K as its Q4_K_M / Q5_K_M); types llama.cpp lacks (FP8_B32) reuse their id.
uint32_t gguf_file_type_of(DType t);
// Parses a name such as "f32", "Q8_0" (case-insensitive); returns false if unknown.
bool parse_type_name(std::string_view name, DType* out);

// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t row_bytes(DType t, int64_t n) {
  const TypeTraits& tt = traits(t);
  return static_cast<size_t>(n / tt.block_size) * tt.block_bytes;
}

// Block layouts shared by every backend (GGUF's, byte for byte). The other block types
// (Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) and their reference conversions are in
// lib/core/quant/quant.h.
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  uint16_t d;       // f16 scale
  uint8_t qs[16];   // low nibbles: elements 0..15, high nibbles: 16..31
};
static_assert(sizeof(BlockQ4_0) == 18);

// Reserved FP8 weight block (layout fixed now, kernels come with the CPU-speed work).
struct BlockFP8_B32 {
  uint16_t d;       // bf16 block scale
  uint8_t qs[32];   // E4M3 values; element = d * e4m3(qs[i])
};
static_assert(sizeof(BlockFP8_B32) == 34);

// FP8 KV page rows: element = 2^(e - 127) * e4m3(qs[i]). 33 bytes per 32 values, so a
// row costs 0.516x its bf16 size.
struct BlockFP8_KV {
  uint8_t e;        // E8M0 scale exponent (biased by 127)
  uint8_t qs[32];   // E4M3 values
};
static_assert(sizeof(BlockFP8_KV) == 33);

}  // namespace v4
