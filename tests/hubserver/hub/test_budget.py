"""InboundBudget: token buckets of messages and bytes, refilled with time."""

from __future__ import annotations

from hubserver.hub.budget import InboundBudget
from hubserver.options import HubOptions


def test_no_budget_when_both_rates_are_unlimited() -> None:
    options = HubOptions(max_receive_messages_per_second=None, max_receive_bytes_per_second=None)
    assert InboundBudget.for_options(options, 0.0) is None


def test_the_message_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    options = HubOptions(
        max_receive_messages_per_second=10,
        max_receive_messages_burst=20,
        max_receive_bytes_per_second=None,
    )
    budget = InboundBudget.for_options(options, 0.0)
    assert budget is not None
    assert budget.charge(20, 100, 0.0) == ""
    assert budget.charge(1, 5, 0.0) == "more than 10 messages per second"
    # The bucket was overdrawn by one: half a second refills 5 -> 4 available.
    assert budget.charge(4, 5, 0.5) == ""
    assert budget.charge(1, 5, 0.5) != ""


def test_the_byte_bucket_holds_at_least_one_maximum_size_message() -> None:
    options = HubOptions(
        max_receive_messages_per_second=None,
        max_receive_bytes_per_second=100,
        maximum_receive_message_size=1000,
    )
    budget = InboundBudget.for_options(options, 0.0)
    assert budget is not None
    assert budget.charge(1, 1000, 0.0) == ""
    assert budget.charge(1, 1, 0.0) == "more than 100 bytes per second"
    assert budget.charge(1, 100, 2.0) == ""  # 200 refilled, 1 overdrawn
