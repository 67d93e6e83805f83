"""Samplers that return packed samples, and pure volume-rendering functions (nerfacc-style)."""

from langfield.render.samplers import march_uniform, ray_aabb, sample_pdf, stratified_bins
from langfield.render.samples import RaySamples
from langfield.render.volume import accumulate, distortion_loss, exclusive_cumsum, packed_weights, render_weights

__all__ = [
    "RaySamples",
    "march_uniform",
    "ray_aabb",
    "sample_pdf",
    "stratified_bins",
    "accumulate",
    "distortion_loss",
    "exclusive_cumsum",
    "packed_weights",
    "render_weights",
]
