from aiusage.agent.queue import Outbox


def ev(i):
    return {"eventId": f"e{i}", "type": "AIDetected", "n": i}


def test_events_survive_reopening_the_outbox(tmp_path):
    q = Outbox(tmp_path / "q.db")
    q.put([ev(1), ev(2), ev(3)])
    q.close()
    q2 = Outbox(tmp_path / "q.db")
    assert [e["eventId"] for _, e in q2.peek(10)] == ["e1", "e2", "e3"]


def test_remove_forgets_only_delivered_events_in_fifo_order(tmp_path):
    q = Outbox(tmp_path / "q.db")
    q.put([ev(i) for i in range(5)])
    batch = q.peek(2)
    q.remove([seq for seq, _ in batch])
    assert [e["eventId"] for _, e in q.peek(10)] == ["e2", "e3", "e4"]
    assert len(q) == 3


def test_same_event_id_is_queued_once(tmp_path):
    q = Outbox(tmp_path / "q.db")
    q.put([ev(1)])
    q.put([ev(1)])
    assert len(q) == 1


def test_state_is_kept_beside_the_events(tmp_path):
    q = Outbox(tmp_path / "q.db")
    assert q.get_state("session") is None
    q.set_state("session", {"sessionId": "s1"})
    q.set_state("session", {"sessionId": "s2"})
    q.close()
    assert Outbox(tmp_path / "q.db").get_state("session") == {"sessionId": "s2"}
