"""Pinhole cameras, ray generation and camera paths for rendering."""

from langfield.cameras.cameras import Cameras, look_at
from langfield.cameras.paths import orbit_cameras, orbit_path, sample_orbit_poses, scene_up, spiral_path

__all__ = ["Cameras", "look_at", "orbit_cameras", "orbit_path", "sample_orbit_poses", "scene_up", "spiral_path"]
