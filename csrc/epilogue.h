// The activation epilogue that a kernel may apply to the values it stores (host and device): the fused
// conv2d / conv_transpose2d + ReLU (conv2d.h) and batch_norm + ReLU (batch_norm.h).
//   none: y        relu: relu(y) = y > 0 || y is NaN ? y : 0     (elementwise.h's relu, so the bits are F.relu's)
// The fused op's backward masks gy with elementwise.h's relu_backward(gy, y) = y <= 0 ? 0 : gy, y the saved output.
#pragma once
#include <string>
#include "array.h"
#include "elementwise.h"
#include "host_device.h"

namespace gradcore {

enum class Activation { none, relu };

// The epilogue on one stored value.
template <typename T> GRADCORE_HD T activate(T v, Activation act) {
  return act == Activation::relu ? apply_unary<UnaryOp::relu, T>(v, T(0), T(0)) : v;
}

// The bindings' activation="none" | "relu" argument; anything else raises ArgError naming it.
inline Activation activation_of(const std::string& name) {
  if (name == "none") return Activation::none;
  if (name == "relu") return Activation::relu;
  throw ArgError("activation: expected \"none\" or \"relu\", got \"" + name + "\"");
}

}  // namespace gradcore
