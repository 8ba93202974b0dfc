"""Orders, fills, positions and accounts of the emulated broker, driven by the simulated market and the clock."""
