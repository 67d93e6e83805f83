"""Row-sparse grid gradients and the Adam that steps only their rows."""

import pytest
import torch

from langfield.fields import DenseGrid
from langfield.train.loop import all_finite
from langfield.train.optim import RowAdam

AABB = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])


def _grid(sparse: bool) -> DenseGrid:
    torch.manual_seed(0)
    return DenseGrid(4, (33, 33, 33), AABB, init_std=0.5, sparse_grad=sparse)


def _loss(grid: DenseGrid, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    positions = torch.rand(50, 3, generator=generator) * 1.2 - 0.6  # the middle of the box: many rows untouched
    target = torch.randn(50, 4, generator=generator)
    # two lookups in one graph: autograd sums the two sparse gradients (rows repeated, not coalesced)
    return (grid(positions) - target).pow(2).sum() + grid(positions[:10]).sum()


def test_sparse_grid_gradient_equals_the_dense_one_on_touched_rows_only():
    dense, sparse = _grid(False), _grid(True)
    _loss(dense, 1).backward()
    _loss(sparse, 1).backward()
    grad = sparse.values.grad
    assert grad is not None and grad.is_sparse
    assert torch.allclose(grad.to_dense(), dense.values.grad, atol=1e-6)
    touched = grad.coalesce().indices()[0]
    assert 0 < len(touched) < 0.5 * grid_rows(sparse)  # it lists rows, not the whole table
    assert (dense.values.grad.abs().sum(1) > 0).nonzero().squeeze(1).tolist() == touched.tolist()


def test_a_small_table_keeps_a_dense_gradient():
    grid = DenseGrid(4, (9, 9, 9), AABB, sparse_grad=True)  # 2,916 values, 480 corner references: dense is cheaper
    _loss(grid, 0).backward()
    assert grid.values.grad is not None and not grid.values.grad.is_sparse


def grid_rows(grid: DenseGrid) -> int:
    return grid.values.shape[0]


def test_row_adam_steps_touched_rows_like_adam_and_leaves_the_others():
    reference, lazy = _grid(False), _grid(True)
    adam = torch.optim.Adam([reference.values], lr=0.05, betas=(0.9, 0.99), eps=1e-15)
    row_adam = RowAdam([lazy.values], lr=0.05, betas=(0.9, 0.99), eps=1e-15)
    # the first step touches the same rows in both: identical update there, and nothing moves elsewhere
    for optimizer, grid in ((adam, reference), (row_adam, lazy)):
        optimizer.zero_grad(set_to_none=True)
        _loss(grid, 1).backward()
        optimizer.step()
    assert torch.allclose(lazy.values, reference.values, atol=1e-6)
    before = lazy.values.detach().clone()
    state = {k: v.clone() for k, v in row_adam.state[lazy.values].items()}
    row_adam.zero_grad(set_to_none=True)
    _loss(lazy, 2).backward()
    grad = lazy.values.grad
    assert grad is not None
    touched = grad.coalesce().indices()[0]
    untouched = torch.ones(grid_rows(lazy), dtype=torch.bool)
    untouched[touched] = False
    row_adam.step()
    assert untouched.any() and torch.equal(lazy.values.detach()[untouched], before[untouched])
    assert torch.equal(row_adam.state[lazy.values]["exp_avg"][untouched], state["exp_avg"][untouched])
    assert not torch.equal(lazy.values.detach()[touched], before[touched])
    assert float(row_adam.state[lazy.values]["step"]) == 2.0


def test_row_adam_switches_between_dense_and_sparse_gradients_with_one_state():
    grid = _grid(True)
    optimizer = RowAdam([grid.values], lr=0.05, betas=(0.9, 0.99), eps=1e-15, fused=True)
    for step, sparse in enumerate((False, True, False, True)):
        grid.sparse_grad = sparse
        optimizer.zero_grad(set_to_none=True)
        _loss(grid, step).backward()
        assert grid.values.grad is not None and grid.values.grad.is_sparse == sparse
        optimizer.step()
    assert float(optimizer.state[grid.values]["step"]) == 4.0
    # a checkpoint of it is an ordinary Adam state
    plain = torch.optim.Adam([torch.nn.Parameter(grid.values.detach().clone())], lr=0.05)
    plain.load_state_dict(optimizer.state_dict())
    restored = plain.state[plain.param_groups[0]["params"][0]]
    assert torch.equal(restored["exp_avg_sq"], optimizer.state[grid.values]["exp_avg_sq"])


def test_row_adam_refuses_weight_decay_on_sparse_gradients():
    grid = _grid(True)
    optimizer = RowAdam([grid.values], lr=0.05, weight_decay=0.1)
    _loss(grid, 0).backward()
    with pytest.raises(ValueError, match="weight decay"):
        optimizer.step()


def test_all_finite_reads_the_values_of_sparse_gradients():
    grid = _grid(True)
    _loss(grid, 0).backward()
    grad = grid.values.grad
    assert grad is not None and all_finite([grad, torch.ones(3), None])
    grad._values()[3, 1] = float("nan")
    assert not all_finite([grad])
