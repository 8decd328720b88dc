"""Password hashing with argon2id, off the event loop.

Parameters: m=64 MiB, t=2, p=1 — stronger than every row of OWASP's argon2id table (its first
is m=46 MiB, t=1) — about 105 ms per verify on the development machine (2 cores). argon2
releases the GIL, so a thread pool with one thread per core runs hashes in parallel while the
event loop keeps serving other requests; the hashing threads run at the lowest CPU priority
(SCHED_IDLE), so pages and the rest of sign-in go first and hashing takes what is left.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHER = PasswordHasher(time_cost=2, memory_cost=65536, parallelism=1)


def _yield_to_the_event_loop() -> None:
    """Run this hashing thread at the lowest CPU priority (Linux: scheduling policy and nice
    value are per thread), so the event loop's thread, PostgreSQL and everything else are
    served first while sign-ins run flat out."""
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux: fall back to a high nice value
        try:
            os.setpriority(os.PRIO_PROCESS, tid, 19)
        except (AttributeError, OSError):
            pass


_POOL = ThreadPoolExecutor(
    max_workers=os.cpu_count() or 2,
    thread_name_prefix="argon2",
    initializer=_yield_to_the_event_loop,
)
# Verified against when the identity is unknown, so both paths cost the same.
_DUMMY_HASH = HASHER.hash("not a password anyone has: dummy for constant time")


async def _run(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(_POOL, fn, *args)


async def hash_password(password: str) -> str:
    return await _run(HASHER.hash, password)


def _verify(stored: str | None, password: str) -> tuple[bool, bool]:
    try:
        HASHER.verify(stored or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    if stored is None:
        return False, False
    return True, HASHER.check_needs_rehash(stored)


async def verify_password(stored: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs_rehash). With ``stored`` None the dummy hash is checked and False
    returned, in the same time as a real check."""
    return await _run(_verify, stored, password)


MIN_LENGTH = 12
MAX_LENGTH = 1024  # bounds the hashing cost; far above the 128 people may need
_ZXCVBN_PREFIX = 100  # zxcvbn is slow on very long input; the password itself is never cut

_WARNINGS_PL = {
    "This is a top-10 common password.": "To jedno z najczęściej używanych haseł.",
    "This is a top-100 common password.": "To jedno z najczęściej używanych haseł.",
    "This is a very common password.": "To bardzo popularne hasło.",
    "This is similar to a commonly used password.": "To hasło przypomina bardzo popularne hasło.",
    'Repeats like "aaa" are easy to guess.': "Powtórzenia typu „aaa” łatwo odgadnąć.",
    'Repeats like "abcabcabc" are only slightly harder to guess than "abc".': (
        "Powtórzenia typu „abcabcabc” łatwo odgadnąć."
    ),
    "Sequences like abc or 6543 are easy to guess.": "Ciągi typu abc czy 6543 łatwo odgadnąć.",
    "Recent years are easy to guess.": "Ostatnie lata łatwo odgadnąć.",
    "Dates are often easy to guess.": "Daty łatwo odgadnąć.",
    "Straight rows of keys are easy to guess.": "Rzędy klawiszy łatwo odgadnąć.",
    "Short keyboard patterns are easy to guess.": "Krótkie wzory z klawiatury łatwo odgadnąć.",
    "Names and surnames by themselves are easy to guess.": "Same imiona i nazwiska łatwo odgadnąć.",
    "Common names and surnames are easy to guess.": "Popularne imiona i nazwiska łatwo odgadnąć.",
    "A word by itself is easy to guess.": "Pojedyncze słowo łatwo odgadnąć.",
}


def password_problems(password: str, confirm: str | None, email: str) -> dict[str, str]:
    """Field → message for a new password; empty when it is acceptable.

    NIST SP 800-63B: a length minimum, no composition rules, a check against common and
    guessable passwords and the person's own data, and a reason they can act on.
    """
    from zxcvbn import zxcvbn

    if len(password) < MIN_LENGTH:
        return {
            "password": f"Hasło musi mieć co najmniej {MIN_LENGTH} znaków "
            "(zalecamy 15 lub więcej albo kilka słów)."
        }
    if len(password) > MAX_LENGTH:
        return {"password": f"Hasło może mieć najwyżej {MAX_LENGTH} znaków."}
    lowered = password.lower()
    local = email.lower().partition("@")[0]
    if email.lower() in lowered or (len(local) >= 4 and local in lowered):
        return {"password": "Hasło nie może zawierać Twojego adresu e-mail."}
    result = zxcvbn(password[:_ZXCVBN_PREFIX], user_inputs=[email, local])
    if result["score"] < 3:
        warning = result.get("feedback", {}).get("warning") or ""
        reason = _WARNINGS_PL.get(warning, "Takie hasło łatwo odgadnąć.")
        return {"password": f"{reason} Użyj dłuższego hasła lub kilku przypadkowych słów."}
    if confirm is not None and confirm != password:
        return {"password_confirm": "Hasła nie są takie same."}
    return {}
