"""The core types every layer above the fields shares: the model protocol, scene information, ray batches, method
specs, run files and device resolution. Training, export and run loading depend on these, not on the methods."""

from langfield.core.batch import RayBatch
from langfield.core.device import resolve_device
from langfield.core.method import MethodSpec
from langfield.core.model import Model
from langfield.core.scene import SceneInfo

__all__ = ["MethodSpec", "Model", "RayBatch", "SceneInfo", "resolve_device"]
