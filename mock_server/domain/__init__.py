"""Plain-Python domain of the emulator: no Flask, no HTTP, only the standard library and small pure libraries."""
