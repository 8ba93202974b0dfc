"""The Tradefence contract suite: checks any target (the emulator or Tradefence's sandbox) against openapi.yaml.

Run it with `pytest --target=mock|sandbox|URL` (the plugin is registered as a pytest11 entry point), or
`pytest --pyargs contracts --target=...` from a project that installed tradefence-sandbox.
"""
