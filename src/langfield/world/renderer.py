"""A batched analytic ray caster for the procedural world, in torch on any device.

Rays hit unions of primitives exactly (closed-form quadrics and slabs; sphere tracing for the torus). Shading:
Lambertian diffuse plus Blinn-Phong specular (strong for glossy materials) under one directional light with
hard shadows, and an ambient term. Per pixel it returns RGB, alpha, depth (distance along the ray) and the
object id (0 background, 1..K objects, ``TABLE_ID`` the table top).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from langfield.world.primitives import INTERSECT
from langfield.world.scene import TABLE_COLOR, TABLE_RADIUS, Scene, WorldObject
from langfield.world.vocabulary import COLORS

TABLE_ID = 255
GLOSS = {"matte": (0.04, 8.0), "glossy": (0.6, 60.0)}
TEXTURE_WAVES = 48


@dataclass
class PartBatch:
    """One primitive slot for a batch of B images (B = 1 broadcasts over every view)."""

    primitive: str
    center: torch.Tensor  # (B, 3) world
    yaw: torch.Tensor  # (B,)
    dims: torch.Tensor  # (B, 3)
    upright: bool
    albedo: torch.Tensor  # (B, 3)
    specular: torch.Tensor  # (B, 2): strength, shininess
    ids: torch.Tensor  # (B,) long


def object_parts(objects: list[WorldObject], device="cpu") -> list[PartBatch]:
    """The parts of objects of one structure (same kind; category objects: same primitives with their own
    proportions), one object per image of the batch."""
    specs = [o.parts for o in objects]
    structure = [(p.primitive, p.upright) for p in specs[0]]
    assert all([(p.primitive, p.upright) for p in spec] == structure for spec in specs), (
        "a batch holds objects of one structure"
    )
    scale = torch.tensor([o.scale for o in objects], device=device)
    yaw = torch.tensor([o.yaw for o in objects], device=device)
    position = torch.tensor([[*o.position, 0.0] for o in objects], device=device)
    albedo = torch.tensor([COLORS[o.attributes.color][0] for o in objects], device=device)
    specular = torch.tensor([GLOSS[o.attributes.material] for o in objects], device=device)
    ids = torch.tensor([o.id for o in objects], device=device)
    cos, sin = torch.cos(yaw), torch.sin(yaw)
    parts = []
    for k, (primitive, upright) in enumerate(structure):
        offset = torch.tensor([spec[k].offset for spec in specs], device=device) * scale[:, None]
        rotated = torch.stack(
            [cos * offset[:, 0] - sin * offset[:, 1], sin * offset[:, 0] + cos * offset[:, 1], offset[:, 2]], -1
        )
        dims = torch.tensor([spec[k].dims for spec in specs], device=device) * scale[:, None]
        parts.append(PartBatch(primitive, position + rotated, yaw, dims, upright, albedo, specular, ids))
    return parts


def scene_parts(scene: Scene, device="cpu") -> list[PartBatch]:
    parts: list[PartBatch] = []
    for obj in scene.objects:
        parts += object_parts([obj], device)
    if scene.table:
        one = torch.ones(1, device=device)
        parts.append(
            PartBatch(
                "cylinder",
                torch.tensor([[0.0, 0.0, -0.02]], device=device),
                torch.zeros(1, device=device),
                torch.tensor([[TABLE_RADIUS, 0.02, 0.0]], device=device),
                False,
                torch.tensor([TABLE_COLOR], device=device),
                torch.tensor([GLOSS["matte"]], device=device),
                (one * TABLE_ID).long(),
            )
        )
    return parts


def _intersect(part: PartBatch, origins: torch.Tensor, directions: torch.Tensor, image: torch.Tensor):
    """World-space hits of flat rays with one part; ``image`` (N,) indexes the part's batch."""
    index = image if part.center.shape[0] > 1 else torch.zeros_like(image)
    cos, sin = torch.cos(part.yaw[index]), torch.sin(part.yaw[index])

    def to_local(v: torch.Tensor) -> torch.Tensor:
        x, y, z = v.unbind(-1)
        local = torch.stack([cos * x + sin * y, -sin * x + cos * y, z], -1)
        if part.upright:  # the primitive's z axis lies along the object's y axis
            local = torch.stack([local[:, 0], -local[:, 2], local[:, 1]], -1)
        return local

    t, normal = INTERSECT[part.primitive](
        to_local(origins - part.center[index]), to_local(directions), part.dims[index]
    )
    if part.upright:
        normal = torch.stack([normal[:, 0], normal[:, 2], -normal[:, 1]], -1)
    x, y, z = normal.unbind(-1)
    return t, torch.stack([cos * x - sin * y, sin * x + cos * y, z], -1)


def cast(parts: list[PartBatch], origins: torch.Tensor, directions: torch.Tensor, image: torch.Tensor):
    """Closest hit over all parts: distance (N,), world normal (N, 3) and part index (N,) (-1 for a miss)."""
    best = torch.full(origins.shape[:1], math.inf, device=origins.device)
    normal = torch.zeros_like(origins)
    which = torch.full(origins.shape[:1], -1, dtype=torch.long, device=origins.device)
    for k, part in enumerate(parts):
        t, n = _intersect(part, origins, directions, image)
        closer = t < best
        best = torch.where(closer, t, best)
        normal = torch.where(closer[:, None], n, normal)
        which = torch.where(closer, torch.full_like(which, k), which)
    return best, normal, which


def surface_texture(points: torch.Tensor) -> torch.Tensor:
    """A fixed texture in [0.5, 1] at world points (N, 3): a sum of plane waves of random directions, phases and
    wavelengths from about 0.03 to 0.5 scene units, so that every surface carries detail at several scales."""
    generator = torch.Generator().manual_seed(1234)
    directions = torch.nn.functional.normalize(torch.randn(TEXTURE_WAVES, 3, generator=generator), dim=-1)
    frequency = torch.exp(torch.empty(TEXTURE_WAVES).uniform_(math.log(12.0), math.log(200.0), generator=generator))
    phase = torch.empty(TEXTURE_WAVES).uniform_(0, 2 * math.pi, generator=generator)
    waves = directions.to(points) * frequency.to(points)[:, None]
    value = torch.sin(points @ waves.T + phase.to(points)).sum(-1) / math.sqrt(TEXTURE_WAVES / 2)
    return 0.75 + 0.25 * torch.tanh(1.5 * value)


def render_rays(
    parts: list[PartBatch],
    origins: torch.Tensor,
    directions: torch.Tensor,
    image: torch.Tensor,
    light: torch.Tensor,
    intensity: torch.Tensor,
    ambient: torch.Tensor,
    background: torch.Tensor,
    shadows: bool = True,
    textured: bool = False,
) -> dict[str, torch.Tensor]:
    """Shade flat rays (N, 3) of images ``image`` (N,); lighting and background are per image (B, ...); with
    ``textured``, albedo is modulated by :func:`surface_texture`."""
    t, normal, which = cast(parts, origins, directions, image)
    hit = which >= 0
    lit = light[image]
    rgb = background[image].clone()
    ids = torch.zeros_like(which)
    if bool(hit.any()):
        h = hit.nonzero(as_tuple=True)[0]
        n = normal[h]
        d = directions[h]
        n = torch.where(((n * d).sum(-1, keepdim=True) > 0), -n, n)  # face the viewer
        k = which[h]
        img = image[h]
        albedo = torch.stack([p.albedo[img if p.albedo.shape[0] > 1 else torch.zeros_like(img)] for p in parts])
        specular = torch.stack([p.specular[img if p.specular.shape[0] > 1 else torch.zeros_like(img)] for p in parts])
        part_ids = torch.stack([p.ids[img if p.ids.shape[0] > 1 else torch.zeros_like(img)] for p in parts])
        rows = torch.arange(len(h), device=origins.device)
        albedo, specular, ids[h] = albedo[k, rows], specular[k, rows], part_ids[k, rows]
        if textured:
            albedo = albedo * surface_texture(origins[h] + d * t[h, None])[:, None]
        light = lit[h]
        diffuse = (n * light).sum(-1).clamp_min(0)
        visible = torch.ones_like(diffuse)
        if shadows:
            points = origins[h] + d * t[h, None] + n * 1e-3
            occluded, _, _ = cast(parts, points, light, img)
            visible = (~torch.isfinite(occluded)).float()
        half = light - d
        half = half / half.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        spec = (n * half).sum(-1).clamp_min(0) ** specular[:, 1] * specular[:, 0]
        power = intensity[img] * visible
        color = albedo * (ambient[img, None] + (1 - ambient[img, None]) * power[:, None] * diffuse[:, None])
        rgb[h] = (color + (power * spec)[:, None]).clamp(0, 1)
    return {"rgb": rgb, "alpha": hit.float(), "depth": t, "ids": ids}
