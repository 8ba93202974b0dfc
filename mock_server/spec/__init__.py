"""The OpenAPI document as data: loading it, its operations, and validators compiled from it.

This layer never imports the domain: it knows the spec, not the market.
"""
