"""Password hashing with argon2id, off the event loop, bounded and sharing the CPU fairly.

Parameters: m=64 MiB, t=2, p=1 — stronger than every row of OWASP's argon2id table (its first
is m=46 MiB, t=1) — about 105 ms per verify on the development machine (2 cores).

At most WORKERS hashes (one per core) run at once per process, in threads at normal CPU
priority: argon2 releases the GIL, so they run in parallel while the event loop serves other
requests, and on a busy machine they get their fair share like any other work. (They used to
run at the lowest priority, SCHED_IDLE, which kept pages fast under a sign-in flood but made a
sign-in 46 times slower beside three CPU-bound processes: idle-priority threads get the CPU
only when nothing else wants it.) On Linux the threads are SCHED_BATCH: the same share of the
CPU as any process at nice 0, but marked as not interactive, so the scheduler lets the event
loop's and PostgreSQL's short wake-ups in first (bench/login.py: a cheap page's p95 under a
sign-in flood was lower with it than with plain nice 0, for the same sign-in time beside busy
neighbours).

In front of the threads is a queue with a deadline. A hash that would have to wait more than
MAX_WAIT for a thread (estimated from the queue ahead of it and the measured time per hash) is
refused at once with HashBusy — a 503 with Retry-After, "too many sign-ins right now" —
without hashing; callers that reserved a guessing-limit attempt give it back, so a refusal
counts as nothing. An admitted hash that still waits past MAX_QUEUED_WAIT (the machine got
slower meanwhile) is refused the same way. So past capacity the accepted sign-ins keep the
threads busy and stay fast, and the rest learn it in milliseconds instead of timing out.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from litestar.exceptions import ServiceUnavailableException

HASHER = PasswordHasher(time_cost=2, memory_cost=65536, parallelism=1)

WORKERS = os.cpu_count() or 2
#: The longest a hash may expect to wait for a thread before it is refused outright.
MAX_WAIT = 1.0
#: The longest an admitted hash waits before it is refused after all (so an accepted sign-in
#: takes at most this plus one hash, even when the machine slows down meanwhile).
MAX_QUEUED_WAIT = 1.25
#: Waiting hashes per process, whatever the estimate says.
MAX_QUEUE = WORKERS * 32

BUSY = "Zbyt wiele logowań w tej chwili, spróbuj ponownie za kilka sekund."


class HashBusy(ServiceUnavailableException):
    """No hashing capacity within the deadline: answered at once, nothing hashed."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(detail=BUSY, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


def _batch_priority() -> None:
    """Run this hashing thread as SCHED_BATCH (Linux; policy and nice are per thread), at
    nice 0. Elsewhere the default policy stays: normal priority either way."""
    try:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        pass


class HashQueue:
    """At most ``workers`` hashes at once; the others wait in line (first come, first
    served: the thread pool's own queue, so a finishing thread takes the next hash without a
    round through the event loop) unless their wait would pass the deadline."""

    def __init__(self, workers: int, max_wait: float, max_queued_wait: float,
                 max_queue: int, seconds_per_hash: float) -> None:
        self.workers = workers
        self.max_wait = max_wait
        self.max_queued_wait = max_queued_wait
        self.max_queue = max_queue
        #: Moving average of one hash's time in its thread: what the wait is estimated by.
        self.seconds_per_hash = seconds_per_hash
        self._admitted = 0  # hashing or in line; changed by the loop and by finished work
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2",
                                        initializer=_batch_priority)

    @property
    def running(self) -> int:
        return min(self._admitted, self.workers)

    @property
    def waiting(self) -> int:
        return max(self._admitted - self.workers, 0)

    def expected_wait(self) -> float:
        """How long a hash arriving now would wait for a thread (on average, the hashes
        running now are half done)."""
        if self._admitted < self.workers:
            return 0.0
        return (self.waiting + 0.5) * self.seconds_per_hash / self.workers

    def retry_after(self) -> int:
        """Seconds until what is queued now has drained: when to try again."""
        return max(2, math.ceil(self._admitted * self.seconds_per_hash / self.workers))

    def admit(self) -> None:
        """Raise HashBusy now if a hash asked for now would be refused (so a caller can
        refuse before any other work)."""
        if self.waiting >= self.max_queue or self.expected_wait() > self.max_wait:
            raise HashBusy(self.retry_after())

    async def run(self, fn, *args) -> Any:
        self.admit()
        with self._lock:
            self._admitted += 1
        work = self._pool.submit(self._timed, fn, *args)
        work.add_done_callback(self._finished)  # run, or cancelled before it ran
        result = asyncio.wrap_future(work)
        try:
            return await asyncio.wait_for(asyncio.shield(result), self.max_queued_wait)
        except TimeoutError:
            if work.cancel():  # still in line: it never runs
                raise HashBusy(self.retry_after()) from None
            return await result  # already hashing: it ends within one hash
        except BaseException:
            work.cancel()  # the request is gone (cancelled): no hash for nobody
            raise

    def _timed(self, fn, *args) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            elapsed = time.perf_counter() - start
            self.seconds_per_hash += (elapsed - self.seconds_per_hash) * 0.2

    def _finished(self, _work) -> None:
        with self._lock:
            self._admitted -= 1


# Verified against when the identity is unknown, so both paths cost the same.
_started = time.perf_counter()
_DUMMY_HASH = HASHER.hash("not a password anyone has: dummy for constant time")
QUEUE = HashQueue(WORKERS, MAX_WAIT, MAX_QUEUED_WAIT, MAX_QUEUE,
                  seconds_per_hash=time.perf_counter() - _started)


def admit() -> None:
    """Refuse at once (HashBusy) when a hash asked for now would be: call before the work
    that leads to a hash, so a refused request costs next to nothing."""
    QUEUE.admit()


async def hash_password(password: str) -> str:
    return await QUEUE.run(HASHER.hash, password)


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
    returned, in the same time as a real check. HashBusy when the queue is full."""
    return await QUEUE.run(_verify, stored, password)


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
    if email and email.lower() in password.lower():
        return {"password": "Hasło nie może zawierać Twojego adresu e-mail."}
    result = zxcvbn(password[:_ZXCVBN_PREFIX], user_inputs=_email_words(email))
    if result["score"] < 3:
        reason = _weakness(result)
        return {"password": f"{reason} Użyj dłuższego hasła lub kilku przypadkowych słów."}
    if confirm is not None and confirm != password:
        return {"password_confirm": "Hasła nie są takie same."}
    return {}


def _email_words(email: str) -> list[str]:
    """What a guesser tries first from the address: all of it, the part before "@" and its
    words ("anna.zastepca" → "anna", "zastepca"). A password may contain one of them (a word is
    a word); it is refused only when that makes it easy to guess, and then says so."""
    local = email.lower().partition("@")[0]
    words = [word for word in re.split(r"[^\w]+|_", local) if len(word) >= 3]
    return [email.lower(), local, *words]


def _weakness(result: dict) -> str:
    """Why zxcvbn finds a password guessable, in Polish. A part that matches the person's own
    address is named as such ("resembles your email address"), not as containing it."""
    for match in result.get("sequence", ()):
        if match.get("dictionary_name") == "user_inputs":
            return "Hasło przypomina Twój adres e-mail."
    warning = result.get("feedback", {}).get("warning") or ""
    return _WARNINGS_PL.get(warning, "Takie hasło łatwo odgadnąć.")
