"""Adam that also takes row-sparse gradients: a parameter whose gradient is a sparse COO tensor over some rows
(a grid with ``sparse_grad``, :mod:`langfield.fields.grid`) has only those rows and their moments stepped — lazy
Adam, as Instant-NGP does for hash-table entries without gradient and ``torch.optim.SparseAdam`` for embeddings.
Dense gradients take torch's (fused) Adam unchanged, so one optimiser serves a whole model, and a parameter may
switch between the two (a grid with a dense regulariser early in training, sparse later): the moments and the
step count are the same tensors either way, and a checkpoint is an ordinary Adam state."""

from __future__ import annotations

import torch


def _sparse_update(
    param: torch.Tensor, grad: torch.Tensor, state: dict, lr: float, beta1: float, beta2: float, eps: float
) -> None:
    rows, g = grad._indices()[0], grad._values()
    if len(rows) > 1 and not bool((rows[1:] > rows[:-1]).all()):  # autograd's accumulation drops the coalesced
        grad = grad.coalesce()  # flag, so test it: a grid's gradient has strictly increasing rows, a sum may not
        rows, g = grad._indices()[0], grad._values()
    if not state:  # as torch's Adam initialises it (the step a float32 scalar tensor beside the parameter)
        state["step"] = torch.zeros((), dtype=torch.float32, device=param.device)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
    state["step"] += 1
    step = float(state["step"])
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    m = exp_avg.index_select(0, rows).lerp_(g, 1.0 - beta1)
    v = exp_avg_sq.index_select(0, rows).mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
    exp_avg.index_copy_(0, rows, m)
    exp_avg_sq.index_copy_(0, rows, v)
    denom = v.div_(1.0 - beta2**step).sqrt_().add_(eps)
    values = param.index_select(0, rows).addcdiv_(m, denom, value=-lr / (1.0 - beta1**step))
    param.index_copy_(0, rows, values)


class RowAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose parameters may have row-sparse gradients (no weight decay, AMSGrad or maximize
    for those)."""

    @torch.no_grad()
    def step(self, closure=None):  # pyright: ignore[reportIncompatibleMethodOverride]
        sparse = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and p.grad.is_sparse:
                    if group["weight_decay"] or group["amsgrad"] or group["maximize"]:
                        raise ValueError("RowAdam steps row-sparse gradients without weight decay, AMSGrad or maximize")
                    sparse.append((group, p, p.grad))
                    p.grad = None  # hidden from torch's Adam, which refuses sparse gradients
        try:
            loss = super().step(closure)
        finally:
            for _, p, grad in sparse:
                p.grad = grad
        for group, p, grad in sparse:
            beta1, beta2 = group["betas"]
            _sparse_update(p, grad, self.state[p], float(group["lr"]), beta1, beta2, group["eps"])
        return loss
