// OpenBLAS's CBLAS interface. The include path comes from `pkg-config openblas`
// (Debian: /usr/include/x86_64-linux-gnu/openblas-pthread), so the header seen
// here is OpenBLAS's own and declares openblas_set_num_threads.
#include <cblas.h>
