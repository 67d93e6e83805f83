import torch
import torch.nn.functional as F

from langfield.fields import DenseGrid, OccupancyGrid


def test_trilinear_matches_grid_sample_and_gradients():
    torch.manual_seed(0)
    aabb = torch.tensor([[-1.0, -2.0, 0.0], [1.0, 2.0, 3.0]])
    grid = DenseGrid(5, (6, 7, 8), aabb, init_std=1.0)
    positions = aabb[0] + torch.rand(300, 3) * (aabb[1] - aabb[0])
    ours = grid(positions)
    # grid_sample wants (N, C, D, H, W) with coordinates ordered (x -> W, y -> H, z -> D)
    volume = grid.as_volume().permute(0, 3, 2, 1)[None]
    normalised = (positions - aabb[0]) / (aabb[1] - aabb[0]) * 2 - 1
    reference = F.grid_sample(volume, normalised.view(1, 1, 1, -1, 3), align_corners=True).view(5, -1).t()
    assert torch.allclose(ours, reference, atol=1e-5)

    # gradient w.r.t. the table and the positions agree with a plain autograd gather
    weights = torch.randn(300, 5)
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
