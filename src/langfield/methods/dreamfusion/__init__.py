"""DreamFusion: text-to-3D by score distillation from a frozen text-to-image diffusion model."""
