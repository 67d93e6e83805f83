"""Datasets of posed images: one :class:`Dataset` type, produced by the Blender, nerfstudio and LLFF parsers."""

from langfield.data.config import DataConfig
from langfield.data.dataset import Dataset
from langfield.data.loader import load_dataset

__all__ = ["DataConfig", "Dataset", "load_dataset"]
