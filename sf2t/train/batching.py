"""Micro-batches of a :class:`sf2t.train.data.SampleFactory` for the training loop.

:func:`batches` yields endless collated micro-batches, made in this process or by DataLoader worker processes
(``_Batches``: the map-style dataset they read, keyed by ``(indices, tasks)``; ``_worker_init``: one thread, CPU
decoding); :class:`Prefetch` runs any such source in a background thread (on CUDA, on its own stream). Both are
re-exported by :mod:`sf2t.train.data`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import TYPE_CHECKING

import torch

from sf2t.train.pool import NoUsableVideo

if TYPE_CHECKING:
    from sf2t.train.data import SampleFactory

__all__ = ["batches", "Prefetch"]


class _Batches(torch.utils.data.Dataset):
    """Map-style view of a factory for a DataLoader: key ``(indices, tasks)`` -> the collated micro-batch of
    ``factory.sample(i, tasks=tasks)`` (pure functions of the key, so any worker makes the same batch). A worker
    sends whole batches: one transfer of a few tensors per micro-batch, not several per sample."""

    def __init__(self, factory: SampleFactory):
        self.factory = factory

    def __getitem__(self, key):
        indices, tasks = key
        pool = self.factory.pool
        before = len(pool.skipped)
        try:
            batch = _collate(self.factory, [self.factory.sample(i, tasks=tasks) for i in indices])
        except NoUsableVideo as e:  # raised again in the training process, without the worker's traceback
            return {"no_usable_video": str(e)}
        if len(pool.skipped) > before:  # tell the training process (its pool is another copy)
            batch["dropped"] = [(s.path, s.kind, s.reason, s.task) for s in pool.skipped[before:]]
        return batch


def _collate(factory: SampleFactory, items: list[dict]) -> dict:
    chunks = factory.inputs.collate(items, factory.tokenizer.pad_token_id)
    for c in chunks:
        c["tasks"] = [items[i]["task"] for i in c["rows"]]
    return {"chunks": chunks, "tasks": [it["task"] for it in items]}


class _Keys(torch.utils.data.Sampler):
    def __init__(self, keys):
        self.keys = keys

    def __iter__(self):
        return self.keys


def _one(item):
    return item


def _worker_init(worker_id: int) -> None:
    """One torch thread per worker: the workers and the training process share the cores. Workers decode and build
    on the CPU whatever the run's device (a forked worker must not touch the parent's CUDA context); the training
    process moves each batch to the device."""
    torch.set_num_threads(1)
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(info.dataset, _Batches):
        info.dataset.factory.store.use_cpu()


def batches(
    factory: SampleFactory,
    batch_size: int,
    *,
    start: int = 0,
    start_step: int = 0,
    tasks_for_step=None,
    skip: int = 0,
    workers: int = 0,
    prefetch: int = 4,
):
    """Endless collated batches; sample indices run ``start, start + 1, ...``, micro-batches count from
    ``start_step`` (a resumed run continues both). ``skip``: indices jumped after each batch (the other ranks'
    share of a distributed global batch). ``tasks_for_step(step)`` may restrict the tasks drawn at a micro-batch
    (curriculum); None: every task, by weight.

    ``workers`` > 0: that many DataLoader worker processes make the micro-batches (decode, task, pack, tokens,
    collate), up to ``prefetch`` each ahead, returned in order: the same batches as ``workers=0`` while no video is
    dropped mid-run. A video a worker drops (static, broken) is dropped from this process's pool too when its batch
    arrives (``factory.pool.skipped`` stays complete); the other workers' pools still hold it, so their later
    samples may differ from a ``workers=0`` run's (each worker drops it when it meets it).

    Each batch is ``{"chunks": [...], "tasks": [...]}``: the forward chunks of ``factory.inputs.collate`` (Qwen: one
    chunk of the whole micro-batch; LLaVA: one per frame count), each with its ``tasks``."""

    def keys():  # (the micro-batch's sample indices, its task restriction)
        index, step = start, start_step
        while True:
            yield list(range(index, index + batch_size)), (tasks_for_step(step) if tasks_for_step else None)
            index += batch_size + skip
            step += 1

    if workers > 0:
        stream = iter(
            torch.utils.data.DataLoader(
                _Batches(factory),
                sampler=_Keys(keys()),
                batch_size=None,
                collate_fn=_one,
                num_workers=workers,
                prefetch_factor=prefetch,
                worker_init_fn=_worker_init,
                persistent_workers=False,
            )
        )
    else:
        stream = (_collate(factory, [factory.sample(i, tasks=t) for i in ids]) for ids, t in keys())
    for batch in stream:
        if "no_usable_video" in batch:
            raise NoUsableVideo(batch["no_usable_video"])
        for path, kind, reason, task in batch.pop("dropped", ()):  # drops seen in a worker, recorded here
            factory.pool.drop(path, kind, reason, task)
        yield batch


class Prefetch:
    """Iterate ``source`` (e.g. :func:`batches`) in a background thread, up to ``depth`` items ahead, so the next
    micro-batch is decoded, built and packed while the model computes (decoders and torch ops release the GIL).
    On CUDA the thread works on its own stream; an item is handed over with an event the consumer's stream waits
    for, and its tensors are marked as used there (``record_stream``), so the allocator does not reuse them early.
    Exceptions in the thread are raised by ``next``. ``close()`` stops the thread (and closes ``source``)."""

    _END = object()

    def __init__(self, source, depth: int = 2, device="cpu"):
        self.source = source
        self.q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self.stop = threading.Event()
        self.cuda = str(device).startswith("cuda") and torch.cuda.is_available()
        self.stream = torch.cuda.Stream(device=device) if self.cuda else None
        self._busy = threading.Lock()  # held by the thread while it makes an item; by paused() between items
        self.thread = threading.Thread(target=self._run, name="sf2t-prefetch", daemon=True)
        self.thread.start()

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:  # (the current CUDA stream is per thread: this thread's work goes to self.stream)
            with torch.cuda.stream(self.stream) if self.cuda else contextlib.nullcontext():
                items = iter(self.source)
                while True:
                    with self._busy:
                        if self.stop.is_set():
                            return
                        item = next(items, self._END)
                        if item is self._END:
                            break
                        event = None
                        if self.cuda:
                            event = torch.cuda.Event()
                            event.record(self.stream)
                    if not self._put((item, event, None)):
                        return
        except BaseException as e:  # handed to the consumer
            self._put((None, None, e))
            return
        self._put((self._END, None, None))

    @contextlib.contextmanager
    def paused(self):
        """Hold the thread between items (the one it is making is finished first) while the caller uses what the
        thread shares: the frame store and its clip cache, the tokenizer, the pool (an evaluation's samples, a
        checkpoint's state). On CUDA the thread's stream is drained first, and waits after for the caller's work
        (clips either side cached on its own stream)."""
        with self._busy:
            if self.cuda:
                self.stream.synchronize()
            try:
                yield
            finally:
                if self.cuda:
                    self.stream.wait_stream(torch.cuda.current_stream())

    def __iter__(self):
        return self

    def __next__(self):
        item, event, err = self.q.get()
        if err is not None:
            raise err
        if item is self._END:
            raise StopIteration
        if event is not None:
            here = torch.cuda.current_stream()
            here.wait_event(event)
            _record_stream(item, here)
        return item

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        close = getattr(self.source, "close", None)
        if close is not None and not self.thread.is_alive():
            close()


def _record_stream(obj, stream) -> None:
    if isinstance(obj, torch.Tensor):
        if obj.is_cuda:
            obj.record_stream(stream)
    elif isinstance(obj, dict):
        for v in obj.values():
            _record_stream(v, stream)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _record_stream(v, stream)
