"""The rules of the portal, one module per domain: plain async functions, no Request, no HTML."""
