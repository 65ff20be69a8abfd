// SIMD kernels for the SIP parser. The parser's algorithm is written once
// (exporter/sip_parse_impl.hpp) and compiled once per instruction set, each copy with that set's
// scan primitives inlined (the simdjson model): a kernel is that compiled parser plus the two
// primitives, exported for the differential tests. Every kernel has the same signatures and
// contracts; the scalar one is the reference the others are tested against.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sipex {

enum class ParseStatus : uint8_t;
enum class Framing : uint8_t;
struct SipMessage;

// Bit i (0 <= i < 64) of the result is set iff base + i < len and buf[base + i] == '\n'. Reads no
// byte outside buf[0, len), but may read bytes before base (the SIMD kernels finish a short tail
// with one load that ends at len). Preconditions: base < len, len < 2^32.
using NewlineMaskFn = uint64_t (*)(const char* buf, size_t len, size_t base);

uint64_t newline_mask_scalar(const char* buf, size_t len, size_t base);
uint64_t newline_mask_sse42(const char* buf, size_t len, size_t base);
uint64_t newline_mask_avx2(const char* buf, size_t len, size_t base);
uint64_t newline_mask_avx512(const char* buf, size_t len, size_t base);

// A set of bytes, in the two forms the kernels use: a 256-entry table for scalar code, and for
// SIMD code a 16-byte table indexed by a byte's low nibble whose bit h says whether byte
// (h << 4 | low) is in the set. Only bytes below 0x80 can be members.
struct CharSet {
  alignas(16) uint8_t by_low_nibble[16];
  bool member[256];
};
constexpr CharSet make_char_set(bool (*in)(unsigned char)) {
  CharSet s{};
  for (unsigned c = 0; c < 128; ++c) {
    if (in(static_cast<unsigned char>(c))) {
      s.member[c] = true;
      s.by_low_nibble[c & 15] = static_cast<uint8_t>(s.by_low_nibble[c & 15] | (1u << (c >> 4)));
    }
  }
  return s;
}

// Returns the first position in [p, end) whose byte is not in `set`, or `end`. Reads no byte
// outside [p, end).
using SpanFn = const char* (*)(const char* p, const char* end, const CharSet& set);

const char* span_scalar(const char* p, const char* end, const CharSet& set);
const char* span_sse42(const char* p, const char* end, const CharSet& set);
const char* span_avx2(const char* p, const char* end, const CharSet& set);
const char* span_avx512(const char* p, const char* end, const CharSet& set);

// The parser compiled for one instruction set: the contract of parse_sip() (sip_parse.hpp).
using ParseFn = ParseStatus (*)(const char* buf, size_t len, Framing framing, SipMessage& out);

// The parser's general algorithm alone, without the fast paths every kernel takes for the usual
// spellings (scalar primitives). Not a kernel: the tests hold every kernel to its answers.
ParseStatus parse_sip_reference(const char* buf, size_t len, Framing framing, SipMessage& out);

ParseStatus parse_sip_scalar(const char* buf, size_t len, Framing framing, SipMessage& out);
ParseStatus parse_sip_sse42(const char* buf, size_t len, Framing framing, SipMessage& out);
ParseStatus parse_sip_avx2(const char* buf, size_t len, Framing framing, SipMessage& out);
ParseStatus parse_sip_avx512(const char* buf, size_t len, Framing framing, SipMessage& out);

struct ScanKernel {
  const char* name;        // "scalar", "sse42", "avx2", "avx512": the values SIPEX_KERNEL accepts
  ParseFn parse;
  NewlineMaskFn newline_mask;
  SpanFn span;
  bool (*supported)();     // whether this CPU can run it
};

// All kernels, scalar first. Tests iterate this table and skip the unsupported ones.
const ScanKernel* scan_kernels(size_t* count);

// The kernel the parser uses by default: the environment variable SIPEX_KERNEL if set (it must
// name a supported kernel, else the process reports it and falls back to the best one, see
// kernel_selection_error()), otherwise the fastest one the CPU supports. Chosen once, thread-safe.
const ScanKernel& active_kernel();
// Non-null if SIPEX_KERNEL named an unknown or unsupported kernel: a one-line explanation.
const char* kernel_selection_error();
// Looks a kernel up by name; nullptr if unknown or unsupported on this CPU.
const ScanKernel* find_kernel(const char* name);

}  // namespace sipex
