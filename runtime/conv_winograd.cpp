// Winograd F(4x4, 3x3) convolution for stride-1 3x3 windows: not implemented yet (winogradFits says no, so conv.cpp never calls the rest).
#include "runtime/conv_winograd.h"

namespace nnc {

bool winogradFits(const ConvGeom&, ConvDir, int) { return false; }
void winogradConv2d(const ConvGeom&, const float*, const float*, const float*, float*, int) {}
void winogradConvInputGrad(const ConvGeom&, const float*, const float*, const float*, float*) {}
void winogradConvWeightGrad(const ConvGeom&, const float*, const float*, float*, float*) {}

}  // namespace nnc
