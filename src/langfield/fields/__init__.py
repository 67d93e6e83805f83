"""Field components (grids, encodings, occupancy) and the fields built from them."""

from langfield.fields.conditional import ConditionalField, ConditionalFieldConfig
from langfield.fields.encodings import PositionalEncoding
from langfield.fields.grid import DenseGrid
from langfield.fields.grid_field import GridField
from langfield.fields.mlp_field import MLPField
from langfield.fields.occupancy import CoarseOccupancy, OccupancyGrid

__all__ = [
    "ConditionalField",
    "CoarseOccupancy",
    "ConditionalFieldConfig",
    "DenseGrid",
    "GridField",
    "MLPField",
    "OccupancyGrid",
    "PositionalEncoding",
]
