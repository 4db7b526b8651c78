"""Scaling out with ``torchrun``: one process per rank, rank 0 the only writer.

Every script works unchanged when started with ``python``: :func:`start` then returns a one-rank
:class:`Ranks` whose collectives do nothing. Started by ``torchrun`` (``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK`` in the environment), :func:`start` joins the process group (gloo for CPU tensors,
NCCL for CUDA tensors when CUDA is present) and the scripts split their work:

- pre-training: DistributedDataParallel, the INI's batch split across ranks, noise drawn for the
  global batch (:meth:`Ranks.global_batch_noise`), losses all-reduced;
- evaluation: whole batches dealt round-robin to ranks (:meth:`Ranks.shard`), per-batch results
  gathered on rank 0 in batch order (:meth:`Ranks.gather_ordered`).

Errors: only rank 0 prints a :class:`~utils.errors.UserError` (the other ranks exit 2 quietly), so the
work of a single rank (its shard) runs inside :meth:`Ranks.run_checked`, which passes a failure to every
rank: rank 0 then prints the failing rank's message and cleans up. An error every rank meets alike
(a bad INI) is printed once by rank 0; torchrun stops ranks still waiting when one exits.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode

from utils.errors import UserError

T = TypeVar("T")


def launched() -> bool:
    """True in a process started by torchrun (or any launcher that sets RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


class Ranks:
    """This process's place among the ranks, and the few collectives the scripts use.

    Attributes:
        rank, world, local_rank: as torchrun numbers them (0, 1, 0 without torchrun).
        distributed: started by torchrun (even with one process): the scripts take their
            distributed path (DistributedSampler, DDP), so P = 1 and P = 2 runs compare.
    """

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, distributed: bool = False):
        self.rank, self.world, self.local_rank, self.distributed = rank, world, local_rank, distributed

    @property
    def main(self) -> bool:
        """Rank 0: the one that logs and writes."""
        return self.rank == 0

    # ----------------------------------------------------------------- device
    def device(self, use_cuda: bool, log) -> torch.device:
        """``use_cuda`` and CUDA present: this rank's own GPU (``cuda:LOCAL_RANK``), else the CPU.

        Without torchrun this is :func:`utils.config.choose_device`. Under torchrun rank 0 logs the
        device of every rank (one line each).
        """
        from utils.config import choose_device

        if not self.distributed:
            return choose_device(use_cuda, log)
        if use_cuda and torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank)
            device = torch.device("cuda", self.local_rank)
            name = f"CUDA {device} ({torch.cuda.get_device_name(device)})"
        else:
            device = torch.device("cpu")
            name = "CPU" + (" (use_cuda = True but CUDA is not available)" if use_cuda else "")
        names = self.all_gather(f"{name} on {os.uname().nodename}")
        for rank, text in enumerate(names):
            log(f"device: rank {rank} of {self.world}: {text}")
        return device

    # ----------------------------------------------------------------- collectives
    def all_gather(self, obj: T) -> list[T]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out: list = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_sum(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """Element-wise sum over ranks (float64), e.g. loss sums and sample counts."""
        values = np.asarray(values, dtype=np.float64)
        if not self.distributed:
            return values
        tensor = torch.from_numpy(values.copy())
        dist.all_reduce(tensor)
        return tensor.numpy()

    def agree(self, error: str | None) -> None:
        """Collective: raise on every rank when any rank reports an error message.

        Every rank raises a :class:`UserError` with the first failing rank's message; only rank 0 prints it
        (:func:`utils.errors.run_main`), and every rank exits with status 2.
        """
        if not self.distributed:
            if error is not None:
                raise UserError(error)
            return
        failed = [e for e in self.all_gather(error) if e is not None]
        if failed:
            raise UserError(failed[0])

    def run_checked(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """``fn(*args, **kwargs)`` on this rank's shard, then :meth:`agree`: a :class:`UserError` on any rank
        stops every rank at this point, so none is left waiting at a later collective."""
        try:
            result, error = fn(*args, **kwargs), None
        except UserError as err:
            result, error = None, str(err)
        self.agree(error)
        return result

    # ----------------------------------------------------------------- sharding
    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's items, dealt round-robin: rank r gets items r, r + P, r + 2P, ... (all of them on one
        rank). Evaluation deals whole batches, so a batch's samples, seed and results do not depend on P."""
        return list(items[self.rank::self.world])

    def gather_ordered(self, records: Iterable[tuple[int, Any]], work: Callable[[], None] | None = None
                       ) -> list[tuple[int, Any]] | None:
        """Rank 0: every rank's ``(key, record)`` pairs, sorted by key; the other ranks: None.

        ``records`` is consumed on this rank first, inside :meth:`run_checked` (a failing rank stops all).
        """
        local = self.run_checked(list, records)
        if not self.distributed:
            return local
        out: list | None = [None] * self.world if self.main else None
        dist.gather_object(local, out, dst=0)
        if not self.main:
            return None
        return sorted((pair for part in out for pair in part), key=lambda pair: pair[0])

    # ----------------------------------------------------------------- pre-training
    @contextmanager
    def global_batch_noise(self, local_batch: int):
        """Random draws of a local batch taken from the global batch's draws (no-op on one rank).

        Inside the block, ``torch.rand``, ``torch.randn`` (with or without a generator), ``torch.rand_like``
        and ``torch.randn_like`` whose first dimension is ``local_batch`` draw for ``local_batch x P`` rows
        (the same stream on every rank, seeded alike) and keep rows ``rank::P``: the rows a
        :class:`~torch.utils.data.DistributedSampler` gives this rank. The sampled z, the scheduled-sampling
        coin flips and the input noise of a sequence are then those of a one-process run with the same
        global batch, so P = 1 and P = 2 give the same loss curve. Dropout masks are not covered.
        """
        if self.world == 1:
            yield
            return
        with _GlobalBatchNoise(local_batch, self.rank, self.world):
            yield

    def data_loaders(self, train_set, val_set, batch_size: int, shuffle: bool, seed: int, where: str):
        """(train, validation, feature-statistics) loaders.

        Without torchrun: today's loaders (shuffled by the global RNG; statistics over the training loader).
        Under torchrun: :class:`~torch.utils.data.DistributedSampler` shards (training shuffled with a
        permutation seeded by ``seed`` + epoch, see :meth:`new_epoch`), each rank loading ``batch_size / P``
        sequences per step, so the global batch is the INI's; the statistics are computed on every rank over
        the whole training set in order (the same on every rank, for any P).
        """
        from torch.utils.data import DataLoader, DistributedSampler

        if not self.distributed:
            train = DataLoader(train_set, batch_size=batch_size, shuffle=shuffle, drop_last=False)
            return train, DataLoader(val_set, batch_size=batch_size, shuffle=False), train
        local = self.local_batch(batch_size, where)

        def sharded(dataset, shuffled):
            sampler = DistributedSampler(dataset, self.world, self.rank, shuffle=shuffled, seed=seed)
            return DataLoader(dataset, batch_size=local, sampler=sampler, drop_last=False)

        return sharded(train_set, shuffle), sharded(val_set, False), DataLoader(train_set, batch_size=batch_size)

    def local_batch(self, batch_size: int, where: str) -> int:
        """The per-rank share of a global batch (checked before any work).

        Raises:
            UserError: ``batch_size`` is not a multiple of the number of ranks (``where`` names the key).
        """
        if batch_size % self.world:
            raise UserError(f"{where}: the global batch of {batch_size} does not split evenly across {self.world} "
                            f"ranks; use a multiple of {self.world}")
        return batch_size // self.world

    @staticmethod
    def new_epoch(loader, epoch: int) -> None:
        """Reseed a DistributedSampler's permutation for ``epoch`` (nothing for an ordinary loader)."""
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module | None:
        """Under torchrun: ``model`` in DistributedDataParallel (its forward makes backward average the
        gradients over ranks; the scheduled-sampling unroll is inside that forward). Else None."""
        if not self.distributed:
            return None
        from torch.nn.parallel import DistributedDataParallel

        # no buffer broadcast at each forward: the buffers are the training-set statistics, synced at init
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                       forward_sync_buffers=False)

    def mean(self, values: torch.Tensor) -> float:
        """Mean of ``values`` over every rank's elements."""
        if not self.distributed:
            return values.mean().item()
        total, count = self.all_sum([values.double().sum().item(), values.numel()])
        return float(total / max(count, 1))


class _GlobalBatchNoise(TorchFunctionMode):
    """See :meth:`Ranks.global_batch_noise`."""

    FACTORIES = (torch.rand, torch.randn)
    LIKE = (torch.rand_like, torch.randn_like)

    def __init__(self, local_batch: int, rank: int, world: int):
        super().__init__()
        self.local_batch, self.rank, self.world = local_batch, rank, world

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in self.FACTORIES:
            size = tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)) else args
            if size and size[0] == self.local_batch:
                full = func((size[0] * self.world, *size[1:]), **kwargs)
                return full[self.rank::self.world].contiguous()
        elif func in self.LIKE and args[0].dim() > 0 and args[0].shape[0] == self.local_batch:
            like = args[0]
            kwargs.setdefault("dtype", like.dtype)
            kwargs.setdefault("device", like.device)
            factory = torch.rand if func is torch.rand_like else torch.randn
            full = factory((like.shape[0] * self.world, *like.shape[1:]), **kwargs)
            return full[self.rank::self.world].contiguous()
        return func(*args, **kwargs)


def start() -> Ranks:
    """Join the process group when started by torchrun; a one-rank :class:`Ranks` otherwise."""
    if not launched():
        return Ranks()
    if not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
        dist.init_process_group(backend=backend)
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), True)


def leave(code: int) -> None:
    """End a torchrun worker with exit status ``code``: leave the process group, flush, and skip the
    interpreter's teardown (measured here: a 2-rank worker spent 1-3 minutes in its final garbage
    collections on the loaded 2-core machine, after its work was done)."""
    if dist.is_initialized():
        dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
