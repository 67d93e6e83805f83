"""``vanilla-nerf``: the original NeRF recipe (Mildenhall et al. 2020), for fidelity to the paper."""
