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

CPython's `Pool.terminate()` kills the workers while the pool's own threads still use the
queues they share (python/cpython#96995): a worker killed as it writes a result leaves the
result queue locked, or half a message in it, and terminate then waits forever for the task
handler or the result handler (a CI run hung so, stopping at a bad image). Our pools stop
their threads first, with the workers alive and their results read, and kill the workers
last, when nothing the parent does needs them. A queue lock held by a worker that is already
dead (killed from outside) cannot be taken back: terminate waits at most `STOP_SECONDS` in all
for it, then kills the workers anyway.

A worker that dies while the pool runs (killed by the kernel's out-of-memory killer, or by a
signal from outside) takes its tasks with it, and CPython's Pool, which starts a new worker in
its place, then waits forever for their results. Our pools fail every pending result with
`WorkerDied` instead, so that the caller stops with an error naming the signal.
"""
import multiprocessing
import multiprocessing.pool
import select
import signal
import threading
import time
from multiprocessing.pool import TERMINATE, IMapIterator

from imgdag.errors import WorkerDied

STOP_SECONDS = 10.0  # the longest terminate waits for the pool's threads (see above)


def _start_worker(initializer, initargs) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if initializer is not None:
        initializer(*initargs)


class _Pool(multiprocessing.pool.Pool):
    """multiprocessing's Pool whose worker handler does not wake for results, whose terminate
    cannot hang, and whose pending results fail when a worker dies (see above)."""

    def _get_sentinels(self):
        return [self._change_notifier._reader]

    def _repopulate_pool(self):  # called once, by __init__, before the pool's threads start
        if not isinstance(self._pool, _Workers):
            self._pool = _Workers(self._cache)
        return super()._repopulate_pool()

    @classmethod
    def _terminate_pool(cls, taskqueue, inqueue, outqueue, pool, change_notifier,
                        worker_handler, task_handler, result_handler, cache):
        """Pool.terminate: the pool's threads end first, the workers last (see above)."""
        deadline = time.monotonic() + STOP_SECONDS

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        worker_handler._state = task_handler._state = TERMINATE
        change_notifier.put(None)
        if inqueue._rlock.acquire(timeout=left()):  # kept: the workers take no further task
            while task_handler.is_alive() and inqueue._reader.poll():
                inqueue._reader.recv_bytes()  # queued tasks; the task handler sends no more
        _join(worker_handler, left())  # no new workers after it; it ends the task handler's loop
        _join(task_handler, left())  # its sentinels go out while the result handler still reads
        result_handler._state = TERMINATE
        if outqueue._wlock.acquire(timeout=left()):  # a result is never cut by this message
            try:
                if select.select([], [outqueue._writer], [], left())[1]:
                    outqueue._writer.send(None)  # wakes the result handler
            finally:
                outqueue._wlock.release()
        _join(result_handler, left())
        for worker in pool:
            worker.kill()  # it holds nothing the parent still needs
        for worker in pool:
            worker.join()


def _join(thread: threading.Thread, timeout: float) -> None:
    """Wait up to `timeout` for `thread` to end, unless it is this thread (a pool collected as
    garbage in one of its own threads terminates there)."""
    if thread is not threading.current_thread():
        thread.join(timeout)


class _Workers(list):
    """A pool's list of worker processes. The pool's worker handler deletes a worker from it
    once the worker has exited (and then starts a new one); a worker that died there fails the
    pool's pending results (see above)."""

    def __init__(self, cache):
        super().__init__()
        self.cache = cache  # the pool's pending results

    def __delitem__(self, i):
        exitcode = self[i].exitcode
        super().__delitem__(i)
        if exitcode:  # a worker ends with 0 only when the pool stops it
            for job in self.cache.copy().values():
                _fail(job, WorkerDied(exitcode))


def _fail(job, error: Exception) -> None:
    """Make the pending result `job` (an imap iterator, or an apply or map result) raise `error`."""
    if isinstance(job, IMapIterator):
        job._set(job._index, (False, error))  # the next result its caller waits for
    else:
        job._success, job._value = False, error
        job._cache.pop(job._job, None)
        job._event.set()


def process_pool(workers: int, initializer=None, initargs=()) -> multiprocessing.pool.Pool:
    """A pool of `workers` processes (forked where the platform can) with default SIGTERM and
    SIGINT, each running `initializer(*initargs)` first."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    return _Pool(workers, _start_worker, (initializer, initargs), context=context)
