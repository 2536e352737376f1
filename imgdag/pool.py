"""Worker process pools that can always be stopped, and that do not spin.

A forked worker inherits its parent's signal handlers. A parent that installed a SIGTERM
handler which only sets a flag (Snakemake does, and so does any library that drives it in
process) would leave workers that ignore `Pool.terminate()`, and the pool then waits for them
forever. Every worker here starts by restoring the default SIGTERM and SIGINT actions.

CPython's process Pool (3.8 and later, bpo-35493) also wakes its worker-handler thread whenever
a result is waiting in the result pipe: while the result thread reads a large result, the handler
loops without blocking and takes CPU and the GIL from the thread that writes the output (about
a third of the parent's samples when packing 50 KB records on 2 cores). Our pools wait, as
CPython's ThreadPool does, only for what the handler acts on: a worker exiting, the task cache
emptying, close or terminate.
"""
import multiprocessing
import multiprocessing.pool
import signal


def _start_worker(initializer, initargs) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if initializer is not None:
        initializer(*initargs)


class _Pool(multiprocessing.pool.Pool):
    """multiprocessing's Pool whose worker handler does not wake for results (see above)."""

    def _get_sentinels(self):
        return [self._change_notifier._reader]


def process_pool(workers: int, initializer=None, initargs=()) -> multiprocessing.pool.Pool:
    """A pool of `workers` processes (forked where the platform can) with default SIGTERM and
    SIGINT, each running `initializer(*initargs)` first."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    return _Pool(workers, _start_worker, (initializer, initargs), context=context)
