"""Request handling at the door, between the network and the handlers; it may use the services
and the security primitives, and neither of them imports it (tests/test_rooms.py keeps them so):
``middleware`` (the session cookie resolved into a Scope), ``csrf`` (the session-bound token and
Fetch Metadata), ``input`` (characters refused before any handler), ``headers`` (CSP and
friends), ``guards`` (login, MFA, permission via opt).
"""
