"""Data-parallel training under torchrun: one process per device, each on its share of the data.

    torchrun --standalone --nproc_per_node 2 -m models.train --model rnng --data data/faceparse ...

Without torchrun's environment (RANK, WORLD_SIZE) everything here is a no-op and training
runs in one process as before. Under it: gloo on the CPU, nccl on CUDA (one GPU per local
rank); a DistributedSampler hands each rank a disjoint share of every epoch; before each
optimizer step the gradients are averaged over the ranks, which is what DistributedDataParallel
computes. It is done as an optimizer step pre-hook rather than by wrapping the network in
torch's DistributedDataParallel because the tiers' losses call the network's parts directly
(RNN-G's stage1 and component nets, STN-iCNN's localizer), which that wrapper's forward
never sees; averaging at the step works for every loss and every train_step hook. Only rank 0
writes checkpoints, logs and prints; the others wait for it at validation.
"""
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> Context:
    """Join torchrun's process group when launched by it; a one-process Context otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    ctx = Context(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(ctx.local_rank)
    if not dist.is_initialized():
        # validation runs on rank 0 alone while the others wait: allow it an hour
        dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(hours=1))
    return ctx


def device_for(ctx: Context, device: torch.device) -> torch.device:
    """Each rank its own GPU (cuda:LOCAL_RANK); the CPU is shared."""
    return torch.device("cuda", ctx.local_rank) if ctx.active and device.type == "cuda" else device


def teardown(ctx: Context):
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()


def sampler(ctx: Context, dataset, seed: int):
    """This rank's disjoint share of each epoch (None in one process: the loader shuffles)."""
    if not ctx.active:
        return None
    from torch.utils.data.distributed import DistributedSampler
    return DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed,
                              drop_last=len(dataset) >= ctx.world_size)


def broadcast_weights(ctx: Context, model: torch.nn.Module):
    """Every rank starts from rank 0's weights and buffers."""
    if ctx.active:
        for tensor in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(tensor.data, src=0)


def average_gradients_before_step(ctx: Context, optimizer: torch.optim.Optimizer):
    """Before each optimizer.step(): every gradient becomes the mean over the ranks (one
    all-reduce of all of them, in the optimizer's parameter order; one rank's missing gradient
    counts as 0, one missing on every rank stays missing, so the optimizer still skips it)."""
    if not ctx.active:
        return None
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def hook(_optimizer, _args, _kwargs):
        grads = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), device=p.device)
                 for p in params]
        present = torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)
        flat = torch.cat(grads + [present])
        dist.all_reduce(flat)
        offset = 0
        for p, seen in zip(params, flat[-len(params):].tolist()):
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p) / ctx.world_size if seen else None
            offset += n
    return optimizer.register_step_pre_hook(hook)


def any_rank(ctx: Context, flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on one (e.g. the time limit), so all stop together."""
    if not ctx.active:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def barrier(ctx: Context):
    if ctx.active:
        dist.barrier()
