// Nothing to compile: SwiftPM wants one source file in a C target; the
// declaration in include/CFuzzerDriver.h is all Swift needs.
#include "CFuzzerDriver.h"
