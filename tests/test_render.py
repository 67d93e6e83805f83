import torch

from langfield.render import (
    RaySamples,
    accumulate,
    march_uniform,
    packed_weights,
    ray_aabb,
    render_weights,
    sample_pdf,
    stratified_bins,
)


def random_packed(rays=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, 20, (rays,), generator=g)
    ray_indices = torch.arange(rays).repeat_interleave(counts)
    sigmas = torch.rand(len(ray_indices), generator=g) * 5
    deltas = torch.rand(len(ray_indices), generator=g) * 0.2
    return sigmas, deltas, ray_indices, rays


def test_weights_sum_at_most_one_and_match_closed_form():
    sigmas, deltas, ray_indices, rays = random_packed()
    weights, transmittance, tau = packed_weights(sigmas, deltas, ray_indices, rays)
    total = accumulate(None, weights, ray_indices, rays)
    assert (total <= 1 + 1e-6).all() and (weights >= 0).all()
    # sum of weights = 1 - exp(-sum of optical depth)
    assert torch.allclose(total, 1 - torch.exp(-tau), atol=1e-5)


def test_packed_equals_dense():
    g = torch.Generator().manual_seed(1)
    sigmas = torch.rand(7, 9, generator=g) * 3
    deltas = torch.rand(7, 9, generator=g) * 0.3
    dense = render_weights(sigmas, deltas)
    ray_indices = torch.arange(7).repeat_interleave(9)
    packed, _, _ = packed_weights(sigmas.reshape(-1), deltas.reshape(-1), ray_indices, 7)
    assert torch.allclose(packed.view(7, 9), dense, atol=1e-6)


def test_constant_colour_field_renders_that_colour():
    sigmas = torch.full((200,), 50.0)
    deltas = torch.full((200,), 0.05)
    ray_indices = torch.arange(10).repeat_interleave(20)
    weights, _, _ = packed_weights(sigmas, deltas, ray_indices, 10)
    colour = torch.tensor([0.2, 0.7, 0.4])
    rgb = accumulate(colour.expand(200, 3), weights, ray_indices, 10)
    opacity = accumulate(None, weights, ray_indices, 10)
    composite = rgb + (1 - opacity)[:, None] * torch.ones(3)
    assert torch.allclose(opacity, torch.ones(10), atol=1e-6)
    assert torch.allclose(composite, colour.expand(10, 3), atol=1e-5)


def test_empty_space_is_transparent():
    ray_indices = torch.arange(4).repeat_interleave(5)
    weights, transmittance, _ = packed_weights(torch.zeros(20), torch.full((20,), 0.1), ray_indices, 4)
    assert torch.equal(weights, torch.zeros(20))
    assert torch.equal(accumulate(None, weights, ray_indices, 4), torch.zeros(4))
    assert torch.allclose(transmittance, torch.ones(20))


def test_segments_continue_transmittance():
    sigmas, deltas, ray_indices, rays = random_packed(rays=1, seed=3)
    half = len(sigmas) // 2
    full, _, _ = packed_weights(sigmas, deltas, ray_indices, rays)
    first, _, tau = packed_weights(sigmas[:half], deltas[:half], ray_indices[:half], rays)
    second, _, _ = packed_weights(sigmas[half:], deltas[half:], ray_indices[half:], rays, torch.exp(-tau))
    assert torch.allclose(torch.cat([first, second]), full, atol=1e-6)


def test_ray_aabb_and_march_skip():
    origins = torch.tensor([[0.0, 0.0, -5.0], [3.0, 3.0, -5.0]])
    directions = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    t_near, t_far = ray_aabb(origins, directions, aabb)
    assert torch.allclose(t_near[0], torch.tensor(4.0)) and torch.allclose(t_far[0], torch.tensor(6.0))
    assert t_far[1] <= t_near[1]  # misses
    samples = march_uniform(origins, directions, t_near, t_far, 0.1, 0, 100)
    assert (samples.ray_indices == 0).all() and len(samples) == 20
    # an occupancy test that empties z > 0 halves the samples
    half = march_uniform(origins, directions, t_near, t_far, 0.1, 0, 100, occupied=lambda p: p[:, 2] < 0)
    assert len(half) == 10 and (half.positions(origins, directions)[:, 2] < 0).all()


def test_pdf_sampling_concentrates_where_weight_is():
    edges = stratified_bins(torch.zeros(3), torch.ones(3), 10, None, jitter=False)
    weights = torch.zeros(3, 10)
    weights[:, 7] = 1.0
    merged = sample_pdf(edges, weights, 50, None, jitter=False)
    assert merged.shape == (3, 61)
    assert (merged[:, 1:] >= merged[:, :-1]).all()
    new_inside = ((merged >= 0.7) & (merged <= 0.8)).sum(dim=-1)
    assert (new_inside >= 45).all()
    samples = RaySamples.from_dense(merged)
    assert len(samples) == 3 * 60


def test_distortion_loss_prefers_compact_weights():
    from langfield.render import distortion_loss

    t = torch.linspace(0.05, 0.95, 10)
    deltas = torch.full((10,), 0.1)
    ray_indices = torch.zeros(10, dtype=torch.long)
    compact = torch.zeros(10)
    compact[4] = 1.0
    spread = torch.zeros(10)
    spread[[1, 8]] = 0.5
    loss_compact = distortion_loss(compact, t, deltas, ray_indices, 1)
    loss_spread = distortion_loss(spread, t, deltas, ray_indices, 1)
    assert torch.allclose(loss_compact, torch.tensor([0.1 / 3]))  # only the self term w^2 delta / 3
    # brute force double sum for the spread case
    brute = (
        sum(spread[i] * spread[j] * abs(t[i] - t[j]) for i in range(10) for j in range(10))
        + (spread**2 * deltas).sum() / 3
    )
    assert torch.allclose(loss_spread, brute.reshape(1), atol=1e-6)
    assert loss_spread > loss_compact


def _sparse_occupancy(seed: int, shape=(48, 40, 56)):
    """Two solid blocks of cells and a few scattered ones in a box whose cells are not cubes."""
    from langfield.fields import OccupancyGrid

    g = torch.Generator().manual_seed(seed)
    aabb = torch.tensor([[-1.0, -0.8, -1.2], [1.0, 0.9, 1.1]])
    occupancy = OccupancyGrid(aabb, shape)
    occupied = torch.rand(shape, generator=g) < 0.001
    occupied[6:16, 8:18, 10:24] = True
    occupied[30:42, 22:28, 36:50] = True
    occupancy.occupied = occupied
    return occupancy, aabb, g


def test_coarse_occupancy_is_conservative_and_follows_the_grid():
    occupancy, aabb, g = _sparse_occupancy(1)
    for factor in (2, 3, 4):
        coarse = occupancy.coarse(factor)
        assert occupancy.coarse(factor) is coarse  # cached while the grid is unchanged
        # every position within `reach` (per axis) of an occupied cell's point tests occupied, inside the box or not
        cells = occupancy.occupied.nonzero().float()
        size = (aabb[1] - aabb[0]) / torch.tensor(occupancy.shape)
        points = aabb[0] + (cells + torch.rand(cells.shape, generator=g)) * size
        near = points[:, None] + (torch.rand((len(points), 20, 3), generator=g) * 2 - 1) * coarse.reach
        assert coarse.query(near.reshape(-1, 3)).all()
        # and it does skip: far from every occupied cell it is empty
        anywhere = aabb[0] + torch.rand((20000, 3), generator=g) * (aabb[1] - aabb[0])
        distance = (anywhere[:, None] - points[None]).abs().amax(-1).min(1).values
        far = anywhere[distance > 2 * factor * float(size.max())]  # two blocks away on some axis
        assert len(far) > 100 and not coarse.query(far).any()
    # an in-place change of the cells (a checkpoint loaded) is seen
    before = occupancy.coarse(4)
    occupancy.occupied.fill_(False)
    assert occupancy.coarse(4) is not before and not occupancy.coarse(4).query(anywhere).any()


def test_coarse_skipping_marches_the_same_samples():
    occupancy, aabb, g = _sparse_occupancy(2)
    rays = 3000
    origins = torch.nn.functional.normalize(torch.randn((rays, 3), generator=g), dim=-1) * 3
    targets = aabb[0] + torch.rand((rays, 3), generator=g) * (aabb[1] - aabb[0])
    directions = (targets - origins) * (0.1 + 0.2 * torch.rand((rays, 1), generator=g))  # not unit length
    t_near, t_far = ray_aabb(origins, directions, aabb)
    t_near = t_near.clamp_min(0)
    jitter = torch.rand(rays, generator=g)
    for offsets in (None, jitter):
        for first, count in ((0, 400), (37, 64)):
            args = (origins, directions, t_near, t_far, 0.01, first, count)
            plain = march_uniform(*args, occupied=occupancy.query, offsets=offsets)
            for factor in (2, 4):
                coarse = occupancy.coarse(factor)
                skipped = march_uniform(*args, occupied=occupancy.query, offsets=offsets, coarse=coarse)
                assert len(plain) > 1000
                assert torch.equal(skipped.ray_indices, plain.ray_indices)
                assert torch.equal(skipped.t_starts, plain.t_starts) and torch.equal(skipped.t_ends, plain.t_ends)


def test_segments_return_every_coloured_sample():
    from langfield.render.rendering import march_and_render

    occupancy, aabb, g = _sparse_occupancy(3)
    rays = 400
    origins = torch.nn.functional.normalize(torch.randn((rays, 3), generator=g), dim=-1) * 3
    directions = torch.nn.functional.normalize(-origins + 0.3 * torch.randn((rays, 3), generator=g), dim=-1)

    def density(positions, ray_indices):
        return torch.full((len(positions),), 20.0), None

    def color(positions, directions, ray_indices, features):
        return torch.sigmoid(positions)

    outputs = {}
    for segment in (None, 16):  # whole rays at once, and 16 steps at a time
        outputs[segment] = march_and_render(
            origins,
            directions,
            aabb,
            0.0,
            0.02,
            density,
            color,
            torch.zeros(3),
            occupied=occupancy.query,
            segment=segment,
            early_stop=0.0,
        )
    for out in outputs.values():
        colours, weights, ray_ids = out["colored"]
        # the coloured samples account for the whole rendered colour (the background is black)
        summed = torch.zeros(rays, 3).index_add(0, ray_ids, colours * weights[:, None])
        assert torch.allclose(summed, out["rgb"], atol=1e-5) and out["rgb"].abs().sum() > 1
    assert torch.allclose(outputs[None]["rgb"], outputs[16]["rgb"], atol=1e-5)
    assert len(outputs[16]["colored"][0]) == len(outputs[None]["colored"][0])


def test_the_field_callbacks_get_the_callers_ray_indices_when_some_rays_miss_or_stop_early():
    """Methods look up per-ray data with the ray indices (clipnerf's codes, dreamfusion's lights): they must be the
    indices of the rays the caller passed, also when rays that miss the box or turned opaque are left out."""
    from langfield.render.rendering import march_and_render

    g = torch.Generator().manual_seed(0)
    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    rays = 64
    origins = torch.nn.functional.normalize(torch.randn((rays, 3), generator=g), dim=-1) * 3
    directions = torch.nn.functional.normalize(-origins + 0.2 * torch.randn((rays, 3), generator=g), dim=-1)
    directions[::3] = -directions[::3]  # every third ray points away from the box: it marches nothing
    seen = []

    def on_its_ray(positions, ray_indices):
        # each position is origin + t·direction of the ray it is said to belong to
        offsets = positions - origins[ray_indices]
        along = (offsets * directions[ray_indices]).sum(-1, keepdim=True)
        return (offsets - along * directions[ray_indices]).norm(dim=-1).max()

    def density(positions, ray_indices):
        seen.append(("density", on_its_ray(positions, ray_indices)))
        return torch.full((len(positions),), 5.0), None

    def color(positions, view, ray_indices, features):
        seen.append(("color", on_its_ray(positions, ray_indices)))
        assert torch.allclose(view, directions[ray_indices])
        return torch.sigmoid(positions)

    for segment in (None, 8):  # whole rays (training) and segments that drop opaque rays (evaluation)
        seen.clear()
        march_and_render(
            origins, directions, aabb, 0.0, 0.05, density, color, torch.zeros(3), segment=segment, early_stop=0.5
        )
        assert {kind for kind, _ in seen} == {"density", "color"}
        assert max(float(distance) for _, distance in seen) < 1e-4, segment
