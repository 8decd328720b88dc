"""Litestar controllers, one per screen area: parse input, call a service, pick a template."""
