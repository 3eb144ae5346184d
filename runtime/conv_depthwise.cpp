// Depthwise convolution (one filter per input channel): not implemented yet (depthwiseFits says no, so conv.cpp never calls the rest).
#include "runtime/conv_depthwise.h"

namespace nnc {

bool depthwiseFits(const ConvGeom&, ConvDir, int) { return false; }
void depthwiseConv2d(const ConvGeom&, const float*, const float*, const float*, float*, int) {}
void depthwiseConvInputGrad(const ConvGeom&, const float*, const float*, const float*, float*) {}
void depthwiseConvWeightGrad(const ConvGeom&, const float*, const float*, float*, float*) {}

}  // namespace nnc
