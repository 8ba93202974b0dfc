"""The emulator's own tests."""
