from aiusage.auth.ratelimit import LoginRateLimiter


def test_failures_per_email_and_ip_are_limited_within_the_window(clock):
    rl = LoginRateLimiter(max_failures=3, window=60, clock=clock)
    for _ in range(3):
        assert rl.retry_after("a@x.io", "1.1.1.1") is None
        rl.record_failure("a@x.io", "1.1.1.1")
    assert rl.retry_after("a@x.io", "1.1.1.1") == 60
    assert rl.retry_after("A@X.IO ", "1.1.1.1") == 60  # same account, other spelling
    assert rl.retry_after("a@x.io", "2.2.2.2") is None  # another address is not punished
    clock.advance(59)
    assert rl.retry_after("a@x.io", "1.1.1.1") == 1
    clock.advance(1)
    assert rl.retry_after("a@x.io", "1.1.1.1") is None


def test_a_success_clears_the_pair_counter(clock):
    rl = LoginRateLimiter(max_failures=2, window=60, clock=clock)
    rl.record_failure("a@x.io", "ip")
    rl.record_success("a@x.io", "ip")
    rl.record_failure("a@x.io", "ip")
    assert rl.retry_after("a@x.io", "ip") is None


def test_one_address_spraying_many_accounts_is_limited(clock):
    rl = LoginRateLimiter(max_failures=100, max_failures_per_ip=10, window=60, clock=clock)
    for i in range(10):
        rl.record_failure(f"user{i}@x.io", "9.9.9.9")
    assert rl.retry_after("fresh@x.io", "9.9.9.9") == 60
    assert rl.retry_after("fresh@x.io", "8.8.8.8") is None


def test_memory_is_bounded(clock):
    rl = LoginRateLimiter(max_failures=1, window=60, clock=clock, max_entries=100)
    for i in range(1000):
        rl.record_failure(f"u{i}", f"ip{i}")
    assert len(rl._pair.attempts) == 100 and len(rl._ip.attempts) == 100
