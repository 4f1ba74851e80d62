// Validity bitmaps in Arrow's layout (bit i, least significant first, set when
// row i is valid; an empty bitmap means "no nulls"), and the few operations
// kernels need on them. Working a byte (eight rows) at a time keeps null
// handling out of the per-row loops of most kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "sluice/record_batch.h"

namespace sluice::compute {

inline size_t BitmapBytes(int64_t rows) { return static_cast<size_t>((rows + 7) / 8); }
inline bool GetBit(const uint8_t* bits, int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }
inline void SetBit(uint8_t* bits, int64_t i) { bits[i >> 3] |= static_cast<uint8_t>(1u << (i & 7)); }
inline void ClearBit(uint8_t* bits, int64_t i) { bits[i >> 3] &= static_cast<uint8_t>(~(1u << (i & 7))); }

// Number of set bits among the first `rows` bits.
int64_t CountSetBits(const uint8_t* bits, int64_t rows);

// A bitmap with the first `rows` bits set.
std::vector<uint8_t> AllValidBitmap(int64_t rows);

// out = a AND b over `rows` bits, where a null pointer means "all valid". Leaves
// `out` empty when both inputs are null (the result has no nulls).
void AndBitmaps(const uint8_t* a, const uint8_t* b, int64_t rows, std::vector<uint8_t>* out);

// Installs `bitmap` as the validity of `column`, counting its nulls; an empty
// bitmap, or one without a cleared bit, leaves the column without nulls.
void SetValidity(Column& column, std::vector<uint8_t> bitmap);

// A column of `rows` nulls of `type`.
std::shared_ptr<Column> MakeAllNullColumn(DataType type, int64_t rows);

}  // namespace sluice::compute
