import pytest
import torch
import torch.nn.functional as F

from langfield.fields import DenseGrid, OccupancyGrid


@pytest.mark.parametrize("channels", [1, 5])  # one channel takes a backward of its own (a flat index_add_)
def test_trilinear_matches_grid_sample_and_gradients(channels: int):
    torch.manual_seed(0)
    aabb = torch.tensor([[-1.0, -2.0, 0.0], [1.0, 2.0, 3.0]])
    grid = DenseGrid(channels, (6, 7, 8), aabb, init_std=1.0)
    positions = aabb[0] + torch.rand(300, 3) * (aabb[1] - aabb[0])
    ours = grid(positions)
    # grid_sample wants (N, C, D, H, W) with coordinates ordered (x -> W, y -> H, z -> D)
    volume = grid.as_volume().permute(0, 3, 2, 1)[None]
    normalised = (positions - aabb[0]) / (aabb[1] - aabb[0]) * 2 - 1
    reference = F.grid_sample(volume, normalised.view(1, 1, 1, -1, 3), align_corners=True).view(channels, -1).t()
    assert torch.allclose(ours, reference, atol=1e-5)

    # gradient w.r.t. the table and the positions agree with a plain autograd gather
    weights = torch.randn(300, channels)
    (ours * weights).sum().backward()
    table = grid.values.detach().clone().requires_grad_(True)
    pos = positions.clone().requires_grad_(True)
    p = (pos - aabb[0]) / (aabb[1] - aabb[0]) * (torch.tensor(grid.shape) - 1)
    base = torch.minimum(p.floor(), torch.tensor(grid.shape) - 2).detach()
    frac = p - base
    out = 0
    for corner in range(8):
        offset = torch.tensor([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        idx = base.long() + offset
        flat = (idx[:, 0] * grid.shape[1] + idx[:, 1]) * grid.shape[2] + idx[:, 2]
        w = torch.prod(torch.where(offset.bool(), frac, 1 - frac), dim=-1)
        out = out + table[flat] * w[:, None]
    (out * weights).sum().backward()
    assert torch.allclose(grid.values.grad, table.grad, atol=1e-5)
    pos2 = positions.clone().requires_grad_(True)
    (grid(pos2) * weights).sum().backward()
    assert torch.allclose(pos2.grad, pos.grad, atol=1e-4)


def test_resample_preserves_linear_functions():
    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    grid = DenseGrid(1, (5, 5, 5), aabb)
    with torch.no_grad():
        pts = grid.points()
        grid.values.copy_((2 * pts[:, 0] - pts[:, 1] + 0.5 * pts[:, 2])[:, None])
    grid.resample(torch.tensor([[-0.5, -0.2, 0.0], [0.7, 0.9, 0.6]]), (9, 11, 4))
    probe = torch.tensor([[0.1, 0.3, 0.2], [-0.4, 0.8, 0.55]])
    expected = 2 * probe[:, 0] - probe[:, 1] + 0.5 * probe[:, 2]
    assert grid.shape == (9, 11, 4)
    assert torch.allclose(grid(probe)[:, 0], expected, atol=1e-5)


def test_grid_state_dict_adopts_checkpoint_shape():
    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    small, big = DenseGrid(2, (3, 3, 3), aabb), DenseGrid(2, (6, 5, 4), aabb, init_std=1.0)
    small.load_state_dict(big.state_dict())
    assert small.shape == (6, 5, 4) and torch.equal(small.values, big.values)


def test_occupancy_marks_only_dense_cells():
    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    occ = OccupancyGrid(aabb, 16)
    assert occ.query(torch.zeros(1, 3)).all()  # everything is occupied before the first update
    fraction = occ.update(lambda p: (p.norm(dim=-1) < 0.5).float() * 100.0, step=0.01, threshold=1e-2)
    assert 0.01 < fraction < 0.12  # a ball of radius 0.5 fills ~6.5 % of the box
    assert occ.query(torch.zeros(1, 3)).all()
    assert not occ.query(torch.tensor([[0.9, 0.9, 0.9], [2.0, 0.0, 0.0]])).any()
    box = occ.occupied_aabb(0.01, 1e-2, margin_cells=0)
    assert (box[0] > -0.7).all() and (box[1] < 0.7).all()


def test_cell_max_bounds_the_grid_over_every_cell_and_is_tight():
    # the occupancy update of `nerf` reads this bound instead of sampling: it must never be below the grid's value
    # anywhere in a cell (a sample there would be skipped), and it is met: at a corner of the cell
    torch.manual_seed(0)
    grid = DenseGrid(1, (7, 11, 5), torch.tensor([[-1.0, -0.5, 0.0], [1.0, 1.5, 0.7]]), init_std=1.0)
    volume = grid.as_volume()[0].detach()
    for split in (1, 2, 3):
        bound = grid.cell_max(split)
        shape = bound.shape
        assert shape == (6 * split, 10 * split, 4 * split)
        n = 200_000
        cells = torch.stack([torch.randint(s, (n,)) for s in shape], dim=-1)
        points = grid.aabb[0] + (cells + torch.rand(n, 3)) / torch.tensor(shape) * (grid.aabb[1] - grid.aabb[0])
        with torch.no_grad():
            values = grid(points)[:, 0]
        flat = (cells[:, 0] * shape[1] + cells[:, 1]) * shape[2] + cells[:, 2]
        sampled = torch.full((bound.numel(),), -torch.inf).scatter_reduce(0, flat, values, "amax").view(shape)
        assert (bound >= sampled - 1e-5).all()
        # the cell's corners, interpolated one at a time, reach the bound
        axes = [torch.arange(s + 1, dtype=torch.float32) / s for s in shape]
        corners = grid.aabb[0] + torch.stack(torch.meshgrid(*axes, indexing="ij"), -1) * (grid.aabb[1] - grid.aabb[0])
        with torch.no_grad():
            at = grid(corners.reshape(-1, 3))[:, 0].view(*(s + 1 for s in shape))
        pooled = F.max_pool3d(at[None, None], kernel_size=2, stride=1)[0, 0]
        assert torch.allclose(bound, pooled, atol=1e-5)
    assert torch.equal(grid.cell_max(1), F.max_pool3d(volume[None, None], 2, stride=1)[0, 0])


def test_occupancy_update_from_a_bound_thresholds_like_sampling():
    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    occ = OccupancyGrid(aabb, 8)
    fresh = torch.zeros(8, 8, 8)
    assert occ.shape == (8, 8, 8)
    fresh[2:4, 2:4, 2:4] = 100.0
    assert occ.update_from(fresh, step=0.01, threshold=1e-2) == 8 / 512
    assert occ.query(torch.tensor([[-0.4, -0.4, -0.4]])).all() and not occ.query(torch.zeros(1, 3)).any()
    # the running maximum decays: cells that empty stay occupied for a while (beside a new one), then go
    fresh.zero_()
    fresh[5, 5, 5] = 100.0
    assert occ.update_from(fresh, step=0.01, threshold=1e-2, decay=0.5) == 9 / 512
    for _ in range(10):
        occ.update_from(fresh, step=0.01, threshold=1e-2, decay=0.5)
    assert not occ.query(torch.tensor([[-0.4, -0.4, -0.4]])).any() and occ.query(torch.full((1, 3), 0.4)).all()


def test_occupancy_cells_per_axis_follow_a_shape_and_checkpoints():
    aabb = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 4.0]])
    occ = OccupancyGrid(aabb, (2, 4, 8))  # cells of 0.5 on every axis
    fresh = torch.zeros(2, 4, 8)
    fresh[1, 3, 7] = 100.0
    occ.update_from(fresh, step=0.01, threshold=1e-2)
    assert occ.query(torch.tensor([[0.75, 1.75, 3.75], [0.51, 1.51, 3.99]])).all()
    assert not occ.query(torch.tensor([[0.75, 1.75, 3.25], [0.25, 1.75, 3.75], [0.75, 1.25, 3.75]])).any()
    box = occ.occupied_aabb(0.01, 1e-2, margin_cells=0)
    assert torch.equal(box, torch.tensor([[0.5, 1.5, 3.5], [1.0, 2.0, 4.0]]))
    other = OccupancyGrid(aabb, 3)
    other.load_state_dict(occ.state_dict())  # adopts the checkpoint's cells
    assert other.shape == (2, 4, 8) and torch.equal(other.occupied, occ.occupied)
    occ.resize(torch.tensor([[0.0] * 3, [1.0] * 3]), (5, 5, 5))
    assert occ.shape == (5, 5, 5) and bool(occ.occupied.all()) and float(occ.density.sum()) == 0.0


def test_inference_mlp_in_bfloat16_matches_float32():
    from torch import nn

    from langfield.fields.precision import inference_mlp

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(39, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
    x = torch.randn(5000, 39)
    exact = torch.sigmoid(mlp(x)).detach()
    with torch.no_grad():
        fast = torch.sigmoid(inference_mlp(mlp, x, bfloat16=True))
        assert torch.equal(inference_mlp(mlp, x, bfloat16=False), mlp(x))
    assert fast.dtype == torch.float32 and fast.shape == exact.shape
    assert float((fast - exact).abs().max()) < 4e-3  # under one 8-bit level
    # with gradients (training) the MLP stays float32, exactly
    assert torch.equal(inference_mlp(mlp, x, bfloat16=True), mlp(x))
