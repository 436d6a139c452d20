#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_gguf (tests/fuzz/corpus/): small valid GGUF files
built by this independent encoder, covering every value type, v2 and v3, non-default
alignment and several tensor types. Each file stays under 8 KiB. Run from anywhere:
    python3 tests/fuzz/make_corpus.py
"""
import os
import struct

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
       BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}
# type id: (block size, block bytes)
TYPES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 8: (32, 34), 12: (256, 144), 30: (1, 2),
         16384: (1, 1), 16386: (32, 34)}


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STR:
        return s(v)
    if t == ARR:
        et, items = v
        out = struct.pack("<IQ", et, len(items))
        return out + b"".join(value(et, i) for i in items)
    return struct.pack(FMT[t], v)


def gguf(kvs, tensors, version=3, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, type_id, ne list)] (data generated)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += s(k) + struct.pack("<I", t) + value(t, v)
    offset, blobs = 0, []
    for name, tid, ne in tensors:
        bs, bb = TYPES[tid]
        rows = 1
        for n in ne[1:]:
            rows *= n
        nbytes = ne[0] // bs * bb * rows
        out += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", tid, offset)
        blobs.append(bytes((i * 37 + len(name)) & 0xFF for i in range(nbytes)))
        offset += (nbytes + alignment - 1) // alignment * alignment
    out += b"\0" * (-len(out) % alignment)
    for b in blobs:
        out += b + b"\0" * (-len(b) % alignment)
    return out


def main():
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(d, exist_ok=True)
    files = {
        "empty_v3.gguf": gguf([], []),
        "all_value_types_v2.gguf": gguf([
            ("general.architecture", STR, "llama"),
            ("t.u8", U8, 200), ("t.i8", I8, -5), ("t.u16", U16, 60000), ("t.i16", I16, -300),
            ("t.u32", U32, 1 << 31), ("t.i32", I32, -(1 << 30)), ("t.f32", F32, 0.5),
            ("t.bool", BOOL, True), ("t.u64", U64, 1 << 40), ("t.i64", I64, -(1 << 40)),
            ("t.f64", F64, 2.5), ("t.str", STR, "text"),
            ("a.u8", ARR, (U8, [1, 2, 3])), ("a.bool", ARR, (BOOL, [True, False])),
            ("a.u64", ARR, (U64, [7, 1 << 63])), ("a.i16", ARR, (I16, [-1, 1])),
            ("a.f64", ARR, (F64, [1.0, -1.0])), ("a.empty", ARR, (I32, [])),
            ("a.str", ARR, (STR, ["x", "", "yz"])),
        ], [("w", 0, [4, 2])], version=2),
        "tensor_types_align64.gguf": gguf([
            ("general.alignment", U32, 64), ("general.name", STR, "align64"),
        ], [("t.f32", 0, [8]), ("t.f16", 1, [4, 2, 2]), ("t.q8_0", 8, [64, 2]),
            ("t.q4_0", 2, [32, 1, 1, 2]), ("t.bf16", 30, [3, 3])], alignment=64),
        "tokenizer_like.gguf": gguf([
            ("tokenizer.ggml.model", STR, "llama"),
            ("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "<s>", "</s>"] +
                                            ["tok%d" % i for i in range(97)])),
            ("tokenizer.ggml.scores", ARR, (F32, [float(-i) for i in range(100)])),
            ("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3] + [1] * 97)),
            ("llama.block_count", U32, 1), ("llama.embedding_length", U32, 256),
        ], [("token_embd.weight", 12, [256, 4])]),
        "fp8_default_alignment_key.gguf": gguf([
            ("general.alignment", U32, 32), ("x.flag", BOOL, False),
        ], [("a.e4m3", 16384, [16, 2]), ("b.fp8_b32", 16386, [32, 2])]),
    }
    for name, data in files.items():
        assert len(data) < 8192, name
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        print(name, len(data))


if __name__ == "__main__":
    main()
