"""Webhooks: signed events (Standard Webhooks) delivered off the request path, and the alerts that raise some."""
