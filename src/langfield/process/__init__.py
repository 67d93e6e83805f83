"""Real captures → posed datasets: ``langfield process images|video`` (structure from motion with pycolmap)."""

from langfield.process.pipeline import ProcessOptions, ProcessReport, process_images, process_video

__all__ = ["ProcessOptions", "ProcessReport", "process_images", "process_video"]
