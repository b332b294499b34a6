import time

import pytest

from aiusage.auth import passwords
from aiusage.auth.passwords import hash_password, needs_rehash, verify_password


def test_a_hash_verifies_only_its_password():
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "wrong horse")


def test_hashes_are_salted():
    assert hash_password("x") != hash_password("x")


def test_empty_passwords_cannot_be_hashed():
    with pytest.raises(ValueError):
        hash_password("")


def test_an_unknown_user_is_checked_against_the_dummy_hash_and_always_fails(monkeypatch):
    calls = []
    real = passwords._hasher

    class Spy:
        def verify(self, h, pw):
            calls.append(h)
            return real.verify(h, pw)

    dummy = passwords._dummy()
    monkeypatch.setattr(passwords, "_hasher", Spy())
    assert not verify_password(None, "aiusage-dummy-password-for-timing")
    assert calls == [dummy]


def test_the_failure_paths_cost_about_the_same():
    h = hash_password("secret")
    verify_password(None, "warm-up")

    def cost(fn, n=3):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t) / n

    unknown = cost(lambda: verify_password(None, "guess"))
    wrong = cost(lambda: verify_password(h, "guess"))
    # Without the dummy verification the unknown-user path would be ~1000x faster; allow a
    # wide margin for noisy shared CPUs.
    assert 0.2 < unknown / wrong < 5.0


def test_a_malformed_stored_hash_is_a_failure_not_a_crash():
    assert not verify_password("not-a-hash", "x")
    assert needs_rehash("not-a-hash")
    assert not needs_rehash(hash_password("x"))
