"""Repo-root conftest: makes `tests.support` importable for the emulator's own tests."""
