#include "quiver_kernels.h"
