// Register-blocked direct convolution: not implemented yet (directFits says no, so conv.cpp never calls the rest).
#include "runtime/conv_direct.h"

namespace nnc {

bool directFits(const ConvGeom&, ConvDir, int) { return false; }
void directConv2d(const ConvGeom&, const float*, const float*, const float*, float*, int) {}
void directConvInputGrad(const ConvGeom&, const float*, const float*, const float*, float*) {}
void directConvWeightGrad(const ConvGeom&, const float*, const float*, float*, float*) {}

}  // namespace nnc
