// Winograd F(4x4, 3x3) convolution for stride-1 3x3 windows: forward, input gradient and weight gradient
// (runtime/conv_geom.h for the geometry). Called by conv.cpp's dispatch when
// the algorithm is ConvAlgo::Winograd; results depend only on the inputs, never on
// the thread count.
#pragma once
#include "runtime/conv_geom.h"

namespace nnc {

// Whether direction d of g is one this algorithm computes (act: the forward
// activation, an Activation; kActNone or kActRelu at least).
bool winogradFits(const ConvGeom& g, ConvDir d, int act);

// y [n, f, oh, ow] = act(bias[f] + conv(x, w)); bias null for none.
void winogradConv2d(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act);
// conv2d's pooling at pool 2 (y [n, f, oh/2, ow/2] = the 2×2 windows' maxima, then bias and act, none
// or relu) in the output transform: a tile's 4×4 outputs hold whole windows.
void winogradConv2dPool2(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act);
// y = act(bias[f] + conv(x, w) + z), z laid out as y: the sum taken in the output transform.
void winogradConv2dResidual(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* z,
                            float* y, int act);
// dx [n, c, h, w] = bias[c] (0 when null) + conv2d's input gradient of dy [n, f, oh, ow] (overwritten).
void winogradConvInputGrad(const ConvGeom& g, const float* dy, const float* w, const float* bias, float* dx);
// dw [f, c/groups, kh, kw] = Σ over images and windows dy · x (overwritten); db [f] = Σ dy over n, oy, ox
// (overwritten) unless null.
void winogradConvWeightGrad(const ConvGeom& g, const float* x, const float* dy, float* dw, float* db);

}  // namespace nnc
