"""The disentangled conditional field of CLIP-NeRF: appearance never reaches density, shape codes do; the
entangled ablation lets appearance move density; codes can tell two objects apart."""

import pytest
import torch

from langfield.fields.conditional import ConditionalField, ConditionalFieldConfig

AABB = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])


def _field(backbone: str, disentangled: bool = True, deformed: bool = True) -> ConditionalField:
    torch.manual_seed(0)
    config = ConditionalFieldConfig(
        backbone=backbone,
        disentangled=disentangled,
        shape_dim=8,
        appearance_dim=8,
        resolution=16,
        deformation_width=32,
        trunk_width=32,
        trunk_depth=3,
        color_width=16,
    )
    field = ConditionalField(config, AABB)
    if deformed:  # the deformation starts at zero (every code renders the template): give it a trained look
        torch.nn.init.normal_(field.deformation.last.weight, std=0.5)
    if backbone == "grid":
        torch.nn.init.normal_(field.density_grid.values, std=2.0)
    else:
        torch.nn.init.normal_(field.density_head.weight, std=1.0)
    return field


def _inputs(n: int = 256):
    g = torch.Generator().manual_seed(1)
    positions = torch.rand(n, 3, generator=g) * 1.6 - 0.8
    directions = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    shape = torch.randn(1, 8, generator=g).expand(n, 8)
    appearance = torch.randn(1, 8, generator=g).expand(n, 8)
    return positions, directions, shape, appearance


@pytest.mark.parametrize("backbone", ["grid", "mlp"])
def test_appearance_code_cannot_change_density(backbone):
    field = _field(backbone)
    positions, directions, shape, appearance = _inputs()
    appearance = appearance.clone().requires_grad_(True)
    sigma, rgb = field(positions, directions, shape, appearance)
    other_sigma, other_rgb = field(positions, directions, shape, appearance.detach() + 3.0)
    assert torch.equal(sigma, other_sigma)  # bit for bit
    assert (rgb - other_rgb).abs().mean() > 1e-3  # while the colour does follow the appearance code
    (grad,) = torch.autograd.grad(sigma.sum(), appearance, allow_unused=True)
    assert grad is None or torch.count_nonzero(grad) == 0
    assert torch.equal(sigma, field.density(positions, shape))


@pytest.mark.parametrize("backbone", ["grid", "mlp"])
def test_shape_code_moves_density_and_starts_at_the_template(backbone):
    positions, directions, shape, appearance = _inputs()
    field = _field(backbone)
    assert (field.density(positions, shape) - field.density(positions, -shape)).abs().mean() > 1e-3
    fresh = _field(backbone, deformed=False)
    assert torch.equal(fresh.density(positions, shape), fresh.density(positions, -shape))


@pytest.mark.parametrize("backbone", ["grid", "mlp"])
def test_the_entangled_ablation_lets_appearance_move_density(backbone):
    field = _field(backbone, disentangled=False)
    positions, directions, shape, appearance = _inputs()
    assert (
        field.density(positions, shape, appearance) - field.density(positions, shape, appearance + 3.0)
    ).abs().mean() > 1e-3
    with pytest.raises(ValueError, match="needs the appearance code"):
        field.density(positions, shape)


def test_two_shape_codes_learn_two_sizes_through_the_deformation():
    """Auto-decoding in miniature: one template grid, two learned codes, targets a small and a large ball."""
    torch.manual_seed(0)
    config = ConditionalFieldConfig(shape_dim=8, appearance_dim=4, resolution=24, deformation_width=32, max_offset=0.4)
    field = ConditionalField(config, AABB)
    codes = torch.nn.Parameter(torch.randn(2, 8) * 0.1)
    radii = torch.tensor([0.3, 0.6])
    grids = [grid.values for grid in field.grids()]
    networks = [p for p in field.parameters() if all(p is not grid for grid in grids)]
    optimizer = torch.optim.Adam([{"params": grids, "lr": 0.1}, {"params": networks + [codes], "lr": 1e-2}])
    g = torch.Generator().manual_seed(2)

    def target(points, which):
        return 10.0 * (points.norm(dim=-1) < radii[which]).float()

    def loss_of(points, which):
        return ((field.density(points, codes[which]) - target(points, which)) ** 2).mean()

    probe = torch.rand(4096, 3, generator=g) * 2 - 1
    probe_which = torch.randint(2, (4096,), generator=g)
    with torch.no_grad():
        before = loss_of(probe, probe_which)
    for _ in range(300):
        points = torch.rand(2048, 3, generator=g) * 2 - 1
        which = torch.randint(2, (2048,), generator=g)
        loss = loss_of(points, which)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = loss_of(probe, probe_which)
        shell = (
            torch.nn.functional.normalize(torch.randn(512, 3, generator=g), dim=-1) * 0.45
        )  # inside the large ball only
        small, large = field.density(shell, codes[0].expand(512, 8)), field.density(shell, codes[1].expand(512, 8))
    assert after < 0.15 * before
    assert large.mean() > 8.0 and small.mean() < 1.0


@pytest.mark.parametrize("disentangled", [True, False])
def test_codes_per_ray_with_an_index_equal_codes_per_sample(disentangled):
    field = _field("grid", disentangled=disentangled)
    positions, directions, _, _ = _inputs(300)
    g = torch.Generator().manual_seed(3)
    shape, appearance = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    index = torch.randint(5, (300,), generator=g)
    sigma, rgb = field(positions, directions, shape, appearance, index=index)
    sigma_each, rgb_each = field(positions, directions, shape[index], appearance[index])
    assert torch.allclose(sigma, sigma_each, atol=1e-5) and torch.allclose(rgb, rgb_each, atol=1e-6)
