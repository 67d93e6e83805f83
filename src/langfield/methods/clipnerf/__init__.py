"""CLIP-NeRF: a disentangled conditional radiance field of an object category (shape and appearance codes)."""
