"""Helpers shared by the emulator's tests."""
