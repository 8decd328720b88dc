"""Security primitives: passwords, tokens, permissions, guards."""
