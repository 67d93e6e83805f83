"""The web viewer (viser): ``langfield view RUN`` and ``langfield train ... --viewer``."""

from langfield.viewer.server import Viewer

__all__ = ["Viewer"]
