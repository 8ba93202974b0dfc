"""The OAuth 2.0 authorization server: clients, codes, grants and JWT access tokens (RFC 6749/7636/9068/9700)."""
