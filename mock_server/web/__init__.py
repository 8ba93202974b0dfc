"""The HTTP layer: thin Flask adapters that turn requests into domain calls and domain results into JSON."""
