import math

import torch

from langfield.cameras import Cameras, look_at, orbit_path, spiral_path


def make(c2w, f=10.0, w=20, h=10):
    return Cameras(
        c2w[None].float(), torch.tensor([f]), torch.tensor([f]), torch.tensor([w / 2]), torch.tensor([h / 2]), w, h
    )


def test_centre_pixel_looks_down_minus_z():
    cams = make(torch.eye(4)[:3])
    # pixel (10, 5) has its centre at (10.5, 5.5): half a pixel right of and below the principal point
    o, d = cams.pixel_rays(torch.tensor([0]), torch.tensor([5 * 20 + 10]))
    expected = torch.tensor([0.05, -0.05, -1.0])
    assert torch.allclose(o, torch.zeros(1, 3))
    assert torch.allclose(d[0], expected / expected.norm(), atol=1e-6)


def test_corner_pixel_and_rigid_transform():
    # camera at (1, 2, 3) rotated 90 degrees about +y: its -z axis points along world -x
    angle = math.pi / 2
    r = torch.tensor([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    c2w = torch.cat([r, torch.tensor([[1.0], [2.0], [3.0]])], dim=1)
    cams = make(c2w)
    o, d = cams.generate_rays(torch.tensor([0]), torch.tensor([0.0]), torch.tensor([0.0]))
    cam_dir = torch.tensor([(0 - 10) / 10.0, -(0 - 5) / 10.0, -1.0])
    world = r @ cam_dir
    assert torch.allclose(o[0], torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(d[0], world / world.norm(), atol=1e-6)
    assert torch.allclose(d.norm(dim=-1), torch.ones(1))


def test_image_rays_row_major():
    cams = make(torch.eye(4)[:3], w=4, h=3)
    _, d = cams.image_rays(0)
    assert d.shape == (12, 3)
    assert d[1, 0] > d[0, 0]  # next column is further right
    assert d[4, 1] < d[0, 1]  # next row is further down


def test_look_at_and_orbit():
    c2w = look_at(torch.tensor([0.0, -4.0, 0.0]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    assert torch.allclose(-c2w[:, 2], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)  # looks along +y at the origin
    assert torch.allclose(c2w[:, 1], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)
    ref = make(c2w)
    path = orbit_path(ref, 8, radius=2.0, elevation_deg=30.0)
    assert len(path) == 8
    assert torch.allclose(path.origins.norm(dim=-1), torch.full((8,), 2.0), atol=1e-5)
    forward = -path.c2w[:, :, 2]
    to_centre = -path.origins / path.origins.norm(dim=-1, keepdim=True)
    assert torch.allclose(forward, to_centre, atol=1e-5)
    assert torch.allclose(path.origins[:, 2], torch.full((8,), 2.0 * math.sin(math.radians(30))), atol=1e-5)


def test_spiral_path_stays_forward_facing():
    c2w = torch.stack([torch.cat([torch.eye(3), torch.tensor([[x], [0.0], [0.0]])], 1) for x in (-0.2, 0.0, 0.2)])
    ref = Cameras(
        c2w, torch.full((3,), 10.0), torch.full((3,), 10.0), torch.full((3,), 5.0), torch.full((3,), 5.0), 10, 10
    )
    path = spiral_path(ref, 10)
    assert len(path) == 10
    assert (-path.c2w[:, :, 2][:, 2] < -0.9).all()  # every forward axis (-z of the camera) still points down -z
