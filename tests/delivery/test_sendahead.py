"""The sender's one commit per two messages in a burst, on the real ledger and a real SMTP
server: while the server works on a message and none is marked ahead, the next two built ones
are marked `sending` and the `sent` of those accepted since committed, so the next message goes
the moment this one is accepted; where the server pipelines, its envelope goes before the reply
(tests/delivery/smtp/test_announce.py)."""

from __future__ import annotations

from invoice_mailer.delivery import outbox
from invoice_mailer.ledger.database import Ledger
from tests.support.delivery_bench import bench_config
from tests.support.helpers import wait_until


def _states(state_dir) -> list[str]:
    """What another connection sees: only what is committed."""
    with Ledger(state_dir, readonly=True) as other:
        return [row["state"] for row in other.query("SELECT state FROM deliveries ORDER BY id")]


def _burst(tmp_path, start_smtp_server, benches, count: int):
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server, copy_to=[]))
    for number in range(1, count + 1):
        bench.add_invoice(f"Fattura_{number}_2026_C042.pdf", number=str(number))
    built = outbox.prebuild(bench.config, bench.ledger, count, bench.clock() + 1, lambda: False)
    assert built == count
    return server, bench


def test_while_the_server_works_on_a_message_the_next_two_are_marked_and_the_sent_committed(
    tmp_path, start_smtp_server, benches
):
    count = 5
    server, bench = _burst(tmp_path, start_smtp_server, benches, count)
    state_dir = bench.config.state_dir
    seen: dict[int, list[str]] = {}
    # What the ledger says while the server has message n, not yet answered. The first was
    # marked `sending` on its own; during 1, 3 and 5 the sender commits (the `sent` waiting,
    # the next two marked); during 2 and 4 it has nothing to commit: 1 and 3 stay `sending`
    # in the ledger until then, though accepted.
    expected = {
        1: ["sending", "sending", "sending", "queued", "queued"],
        2: ["sending", "sending", "sending", "queued", "queued"],
        3: ["sent", "sent", "sending", "sending", "sending"],
        4: ["sent", "sent", "sending", "sending", "sending"],
        5: ["sent", "sent", "sent", "sent", "sending"],
    }

    def look(number: int) -> None:  # the server has message `number`, not yet answered
        seen[number] = wait_until(
            lambda: (states := _states(state_dir)) == expected[number] and states, 10
        )

    server.before_reply = look
    bench.run()

    assert seen == expected
    assert _states(state_dir) == ["sent"] * count  # the last `sent` committed when the step ended
    subjects = [m.message["Subject"] for m in server.wait_for_messages(count)]
    assert len(subjects) == count == len(set(subjects))  # each once


def test_messages_marked_ahead_that_did_not_go_are_queued_again(
    tmp_path, start_smtp_server, benches
):
    server, bench = _burst(tmp_path, start_smtp_server, benches, 4)
    state_dir = bench.config.state_dir

    def stop_during_the_first(number: int) -> None:
        wait_until(lambda: _states(state_dir)[1:3] == ["sending", "sending"], 10)  # marked ahead
        bench.stop.set()  # e.g. SIGTERM while the first message is in flight

    server.before_reply = stop_during_the_first
    bench.run()

    assert _states(state_dir) == ["sent", "queued", "queued", "queued"]
    assert len(server.messages) == 1
    server.before_reply = None
    bench.stop.clear()
    bench.run()
    assert _states(state_dir) == ["sent"] * 4
    assert len(server.wait_for_messages(4)) == 4


def test_stopping_while_the_first_marked_is_in_flight_requeues_the_second(
    tmp_path, start_smtp_server, benches
):
    """Message 2 in flight without a commit of its own (it was marked with 3): SIGTERM then
    lets it finish, both `sent` waiting are committed, 3 is queued again, unsent."""
    server, bench = _burst(tmp_path, start_smtp_server, benches, 4)
    state_dir = bench.config.state_dir

    def stop_during_the_second(number: int) -> None:
        if number == 2:
            bench.stop.set()

    server.before_reply = stop_during_the_second
    bench.run()

    assert _states(state_dir) == ["sent", "sent", "queued", "queued"]
    assert len(server.messages) == 2


def test_where_the_server_pipelines_each_next_envelope_goes_behind_the_dot(
    tmp_path, start_rogue_server, benches
):
    """The server holds each reply to a dot until the client's next line has come (or 2 s):
    the message marked ahead was announced without waiting for it, and each went once."""
    server = start_rogue_server("ok", pipelining=True, hold_dot_reply=True)
    bench = benches(bench_config(tmp_path, server, copy_to=[]))
    for number in range(1, 5):
        bench.add_invoice(f"Fattura_{number}_2026_C042.pdf", number=str(number))
    assert outbox.prebuild(bench.config, bench.ledger, 4, bench.clock() + 1, lambda: False) == 4
    bench.run()

    assert _states(bench.config.state_dir) == ["sent"] * 4
    early = [line[:10] if line else None for line in server.after_dot_lines]
    assert early == [b"MAIL FROM:"] * 3 + [None]  # nothing after the last one
    subjects = [m.message["Subject"] for m in server.messages]
    assert len(subjects) == 4 == len(set(subjects))
    assert server.connections == 1
