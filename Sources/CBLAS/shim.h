// OpenBLAS's cblas.h also declares openblas_set_num_threads / openblas_get_num_threads / openblas_get_config.
#include <cblas.h>

// OpenBLAS starts its worker threads when the library loads, and an idle worker spins (sched_yield) for about 2^28
// cycles before it sleeps: a core lost for the first ~0.1 s of every process. The engine calls OpenBLAS only
// single-threaded (see Compute), so the workers are stopped at once; a call with one thread never restarts them.
void blas_thread_shutdown_(void);
