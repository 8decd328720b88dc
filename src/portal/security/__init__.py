"""Security primitives, which know nothing of requests, tables or services (tests/test_rooms.py
keeps them so): ``passwords`` (argon2 in a thread, the new-password rules), ``totp`` (pyotp, the
sealed secret), ``tokens`` (random, hashed), ``permissions`` (the StrEnum and the role map).

Request handling, which may use the services, is the ``web`` room next door.
"""
