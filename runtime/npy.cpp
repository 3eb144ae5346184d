// PLACEHOLDER
#include "runtime/npy.h"
