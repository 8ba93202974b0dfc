"""The simulated market: the ticker universe, the seeded price model and trading hours."""
