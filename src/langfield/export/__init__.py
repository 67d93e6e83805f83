"""Outputs people look at or load elsewhere: images, videos, point clouds and meshes."""
