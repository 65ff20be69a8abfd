// SIMD kernels for the SIP parser: find the header lines worth reading. Every kernel has the same
// signature and contract; the scalar one is the reference the others are tested against.
//
// Only this header and <immintrin.h> may be included by the kernel translation units, which are
// compiled with -msse4.2 / -mavx2: nothing from them may be inlined into code run on older CPUs.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sipex {

// True for the bytes that may start a line the parser cares about: the first letter, in either
// case, of Call-ID, CSeq, Content-Length (c), i, Via (v), l, From (f), To (t), and CR or LF,
// which start an empty line (the end of the header section).
constexpr bool is_candidate_start(unsigned char c) {
  switch (c) {
    case 'c': case 'C': case 'i': case 'I': case 'v': case 'V': case 'l': case 'L':
    case 'f': case 'F': case 't': case 'T': case '\r': case '\n':
      return true;
    default:
      return false;
  }
}

// Writes, in increasing order, the offsets p in [from, len - 1) with buf[p] == '\n' and
// is_candidate_start(buf[p + 1]) into out, and returns how many. Stops after `max` offsets, or
// right after an offset whose next byte is CR or LF (a possible empty line), so the message body
// is never scanned. Reads no byte outside buf[0, len): SIMD kernels finish the tail with scalar
// code. Preconditions: from <= len, max >= 1, len < 2^32.
using FindCandidatesFn = size_t (*)(const char* buf, size_t len, size_t from, uint32_t* out, size_t max);

size_t find_candidates_scalar(const char* buf, size_t len, size_t from, uint32_t* out, size_t max);
size_t find_candidates_sse42(const char* buf, size_t len, size_t from, uint32_t* out, size_t max);
size_t find_candidates_avx2(const char* buf, size_t len, size_t from, uint32_t* out, size_t max);
size_t find_candidates_avx512(const char* buf, size_t len, size_t from, uint32_t* out, size_t max);

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

struct ScanKernel {
  const char* name;        // "scalar", "sse42", "avx2", "avx512": the values SIPEX_KERNEL accepts
  FindCandidatesFn find_candidates;
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
