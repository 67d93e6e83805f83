"""The default ``nerf`` method: a DVGO-style density + feature grid with a small colour MLP, occupancy-grid
empty-space skipping, coarse-to-fine grid growth and a box that shrinks to the occupied region."""
