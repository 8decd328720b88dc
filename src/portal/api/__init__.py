"""The JSON API v1: API-key authentication, the key's account only."""
