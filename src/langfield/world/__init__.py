"""The procedural world: objects with exact attributes and captions, random table-top scenes, and a fast
batched analytic renderer that returns RGB, depth and object ids."""

from langfield.world.scene import Scene, WorldObject, random_scene
from langfield.world.vocabulary import COLORS, KINDS, MATERIALS, SIZES, Attributes, captions, class_caption

__all__ = [
    "Scene",
    "WorldObject",
    "random_scene",
    "COLORS",
    "KINDS",
    "MATERIALS",
    "SIZES",
    "Attributes",
    "captions",
    "class_caption",
]
