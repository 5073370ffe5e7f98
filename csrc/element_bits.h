// Elements as raw bits, for kernels that only move data (strided copies, gathers): they dispatch on the element's
// size, not its dtype, so one instantiation moves float32 and int32 alike, and float64 and int64, and a NaN's payload
// arrives unchanged.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include "array.h"

namespace gradcore {

// Calls fn(uintN_t{}) for the element size of `dtype` (1, 2, 4 or 8 bytes).
template <typename Fn> auto dispatch_bits(DType dtype, Fn&& fn) {
  switch (dtype_size(dtype)) {
    case 1: return fn(uint8_t{});
    case 2: return fn(uint16_t{});
    case 4: return fn(uint32_t{});
    case 8: return fn(uint64_t{});
  }
  throw std::logic_error("dispatch_bits: no kernel for elements of " + std::to_string(dtype_size(dtype)) + " bytes");
}

}  // namespace gradcore
