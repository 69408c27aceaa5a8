// Open MPI's C interface. The include path comes from `pkg-config ompi-c`
// (Debian libopenmpi-dev: /usr/lib/x86_64-linux-gnu/openmpi/include).
//
// Open MPI defines MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE … as
// macros over the addresses of its global objects (&ompi_mpi_comm_world),
// which Swift cannot import; these inline functions hand them over.
#include <mpi.h>

static inline MPI_Comm segmentation_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype segmentation_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype segmentation_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype segmentation_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op segmentation_mpi_sum(void) { return MPI_SUM; }
static inline void *segmentation_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int segmentation_mpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
static inline int segmentation_mpi_success(void) { return MPI_SUCCESS; }
