"""Wrong-secret limits and the cache of verified secrets, stepped by hand in time."""

from __future__ import annotations

from faxline.auth.secret_cache import VerifiedSecrets
from faxline.auth.throttle import FailureLimiter


def test_the_51st_wrong_secret_within_a_minute_is_blocked() -> None:
    limiter = FailureLimiter(limit=50, window_s=60.0)
    keys = ("client:a", "address:1")
    for i in range(50):
        assert limiter.retry_after(keys, now=i * 0.5) is None
        limiter.failed(keys, now=i * 0.5)
    assert limiter.retry_after(keys, now=25.0) == 35.0
    # Another client from another address is not affected; the same address is.
    assert limiter.retry_after(("client:b", "address:2"), now=25.0) is None
    assert limiter.retry_after(("client:b", "address:1"), now=25.0) == 35.0
    # A minute after the first failure, one more try is allowed.
    assert limiter.retry_after(keys, now=60.0) is None


def test_limiter_memory_is_bounded() -> None:
    limiter = FailureLimiter(limit=3, window_s=60.0, max_keys=100)
    for i in range(1000):
        limiter.failed((f"client:{i}",), now=0.0)
    assert len(limiter._failures) == 100
    for _ in range(10):
        limiter.failed(("client:x",), now=1.0)
    assert len(limiter._failures["client:x"]) == 3


def test_cache_hit_needs_same_secret_same_hash_within_ttl() -> None:
    cache = VerifiedSecrets(ttl_s=300.0, max_entries=2)
    cache.remember("alice-app", "s3cret", "$hash1", now=0.0)
    assert cache.knows("alice-app", "s3cret", "$hash1", now=299.0)
    assert not cache.knows("alice-app", "s3cret", "$hash2", now=1.0)  # re-keyed
    cache.remember("alice-app", "s3cret", "$hash1", now=0.0)
    assert not cache.knows("alice-app", "other", "$hash1", now=1.0)
    assert not cache.knows("alice-ap", "ps3cret", "$hash1", now=1.0)
    assert not cache.knows("alice-app", "s3cret", None, now=1.0)
    assert not cache.knows("alice-app", "s3cret", "$hash1", now=300.0)  # expired


def test_cache_is_bounded_and_keeps_no_secret() -> None:
    cache = VerifiedSecrets(ttl_s=300.0, max_entries=2)
    for i in range(5):
        cache.remember(f"app-{i}", f"secret-{i}", "$h", now=0.0)
    assert len(cache._entries) == 2
    assert not cache.knows("app-0", "secret-0", "$h", now=1.0)
    assert cache.knows("app-4", "secret-4", "$h", now=1.0)
    stored = repr(cache._entries)
    assert "secret-4" not in stored and "app-4" not in stored


def test_a_failure_counted_ahead_can_be_taken_back() -> None:
    limiter = FailureLimiter(limit=2, window_s=60.0)
    keys = ("client:a",)
    limiter.failed(keys, now=1.0)
    limiter.failed(keys, now=2.0)  # a check under way, counted ahead
    assert limiter.retry_after(keys, now=2.5) == 58.5
    limiter.forgive(keys, at=2.0)  # it passed
    assert limiter.retry_after(keys, now=2.5) is None


def test_a_success_forgets_that_keys_failures() -> None:
    limiter = FailureLimiter(2, window_s=60)
    limiter.failed(("alice", "10.0.0.1"), now=0)
    limiter.failed(("alice", "10.0.0.1"), now=1)
    assert limiter.retry_after(("alice",), now=2) is not None
    limiter.forget(("alice",))
    assert limiter.retry_after(("alice",), now=2) is None
    # The address's failures stay: a success for one user does not clear an address.
    assert limiter.retry_after(("10.0.0.1",), now=2) is not None
