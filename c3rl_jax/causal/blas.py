"""One BLAS thread around the small linear algebra of the mechanism fits.

JAX's CPU Cholesky and triangular solves call LAPACK in the OpenBLAS that scipy ships. On the
fits' small matrices its worker threads only add wake-up latency, and when the CPU is shared
every multi-threaded call waits for a scheduler slice: a 64 x 64 triangular solve took 8 ms
instead of 0.04 ms with two other busy processes on 2 cores (XLA's own thread pool was not
the cause).
"""

import functools

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def single_thread_blas():
    """A context manager that limits every BLAS library in the process to one thread."""
    return _controller().limit(limits=1, user_api="blas")
