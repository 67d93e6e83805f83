"""Pinhole cameras in the OpenGL / Blender / nerfstudio convention.

A camera-to-world matrix ``c2w`` (3×4) maps camera coordinates to the world; the camera looks down its
−z axis with +y up and +x right. Pixel ``(u, v)`` has its centre at ``(u + 0.5, v + 0.5)``, ``v`` counting
down from the top row. Ray directions are unit length, so distances along a ray are in world units.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Cameras:
    """A batch of pinhole cameras sharing one image size, with per-camera intrinsics."""

    c2w: torch.Tensor  # (N, 3, 4)
    fx: torch.Tensor  # (N,)
    fy: torch.Tensor  # (N,)
    cx: torch.Tensor  # (N,)
    cy: torch.Tensor  # (N,)
    width: int
    height: int

    def __post_init__(self) -> None:
        n = self.c2w.shape[0]
        if self.c2w.shape[1:] != (3, 4):
            raise ValueError(f"c2w must be (N, 3, 4), got {tuple(self.c2w.shape)}")
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if value.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {tuple(value.shape)}")

    def __len__(self) -> int:
        return self.c2w.shape[0]

    def __getitem__(self, index) -> "Cameras":
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        return Cameras(
            self.c2w[index], self.fx[index], self.fy[index], self.cx[index], self.cy[index], self.width, self.height
        )

    def to(self, device: torch.device | str) -> "Cameras":
        return Cameras(
            self.c2w.to(device),
            self.fx.to(device),
            self.fy.to(device),
            self.cx.to(device),
            self.cy.to(device),
            self.width,
            self.height,
        )

    @property
    def device(self) -> torch.device:
        return self.c2w.device

    @property
    def origins(self) -> torch.Tensor:
        return self.c2w[:, :, 3]

    def scaled(self, factor: float) -> "Cameras":
        """The same cameras for images resized by ``factor`` (e.g. 1/8 for ``--downscale 8``)."""
        width, height = int(self.width * factor), int(self.height * factor)
        sx, sy = width / self.width, height / self.height
        return Cameras(self.c2w, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)

    def generate_rays(
        self, camera_indices: torch.Tensor, u: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rays through pixel coordinates ``(u, v)`` (floats; +0.5 is a pixel centre) of the given cameras.

        Returns ``origins`` (B, 3) and unit ``directions`` (B, 3).
        """
        c2w = self.c2w[camera_indices]
        x = (u - self.cx[camera_indices]) / self.fx[camera_indices]
        y = -(v - self.cy[camera_indices]) / self.fy[camera_indices]
        d_cam = torch.stack([x, y, -torch.ones_like(x)], dim=-1)
        directions = torch.einsum("bij,bj->bi", c2w[:, :, :3], d_cam)
        directions = directions / directions.norm(dim=-1, keepdim=True)
        return c2w[:, :, 3].expand_as(directions).contiguous(), directions

    def pixel_rays(
        self, camera_indices: torch.Tensor, pixel_indices: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rays through the centres of flat pixel indices (``row * width + col``)."""
        u = (pixel_indices % self.width).to(self.c2w.dtype) + 0.5
        v = torch.div(pixel_indices, self.width, rounding_mode="floor").to(self.c2w.dtype) + 0.5
        return self.generate_rays(camera_indices, u, v)

    def image_rays(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """All rays of camera ``index`` in row-major order: ``(H*W, 3)`` origins and directions."""
        pixels = torch.arange(self.width * self.height, device=self.device)
        cams = torch.full_like(pixels, index)
        return self.pixel_rays(cams, pixels)


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Camera-to-world matrices (…, 3, 4) for cameras at ``eye`` looking at ``target`` (OpenGL convention)."""
    z = eye - target
    z = z / z.norm(dim=-1, keepdim=True)
    up = up.expand_as(z)
    x = torch.linalg.cross(up, z, dim=-1)
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    y = torch.linalg.cross(z, x, dim=-1)
    return torch.stack([x, y, z, eye], dim=-1)
