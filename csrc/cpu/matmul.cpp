// CPU matmul: the shared strided GEMM (cpu/gemm.h, gemm_batched) over the broadcast batch; the maths is in matmul.h.
// Transposed operands are read through swapped strides while packing, so no transpose is ever materialised.
// Each tile of each product is one task writing its own part of c: the same bits for any thread count
// (tests/test_matmul.py checks 1, 2 and 3 threads).
#include <tuple>
#include "matmul.h"
#include "cpu/gemm.h"

namespace gradcore {

void matmul_cpu(const Array& a, const Array& b, const Array& bias, Array& c, const MatmulParams& p) {
  if (c.numel() == 0) return;
  dispatch_float(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* pa = a.data_as<T>();
    const T* pb = b.data_as<T>();
    T* pc = c.data_as<T>();
    auto item = [&](int64_t t) {
      return std::make_tuple(cpu::StridedMatrix<T>{pa + p.a_offset(t), p.a_rs, p.a_cs},
                             cpu::StridedMatrix<T>{pb + p.b_offset(t), p.b_rs, p.b_cs}, pc + t * p.M * p.N);
    };
    cpu::gemm_batched<T>(p.batch, p.M, p.N, p.K, item, p.N, false, bias.numel() ? bias.data_as<T>() : nullptr);
  });
}

}  // namespace gradcore
