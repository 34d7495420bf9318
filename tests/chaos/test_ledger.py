"""The chaos ledger's rules on their own (no servers): which versions count as kept, displaced
by the test, explicit losers of an applied decision, and which are lost edits or damage."""
from __future__ import annotations

from tests.chaos.ledger import Decision, Ledger, digest


def test_each_rule_accounts_for_a_version_and_the_rest_are_lost():
    led = Ledger()
    kept = led.write("smb", "a.txt", b"kept", "create")
    renamed = led.write("s3", "b.txt", b"renamed, then kept", "create")
    gone = led.write("smb", "c.txt", b"deleted by the test", "create")
    led.displaced("s3", "c.txt", gone, "delete")  # synced, then deleted on the other side
    loser = led.write("s3", "d.txt", b"the loser", "edit")
    winner = led.write("smb", "d.txt", b"the winner", "edit")
    led.decision(Decision("c1", "d.txt", "source", 1, winner, loser, as_detected=True))
    lost = led.write("smb", "e.txt", b"nobody removed this", "edit")

    final = {"a.txt": kept, "x/b.txt": renamed, "d.txt": winner}
    verdict = led.verdict(final, applied={"c1"})
    assert (verdict.kept, verdict.displaced, verdict.losers) == (3, 1, 1)
    assert len(verdict.lost) == 1 and lost[:16] in verdict.lost[0]
    assert "e.txt" in verdict.lost[0] and not verdict.ok


def test_a_loser_counts_only_once_applied_and_as_detected():
    led = Ledger()
    loser = led.write("s3", "d.txt", b"scaidrive's", "edit")
    winner = led.write("smb", "d.txt", b"the share's", "edit")
    led.decision(Decision("c1", "d.txt", "source", 1, winner, loser, as_detected=True))
    assert len(led.verdict({"d.txt": winner}, applied=set()).lost) == 1  # not applied
    newer = Ledger()
    loser = newer.write("s3", "d.txt", b"edited after detection", "edit")
    winner = newer.write("smb", "d.txt", b"the share's", "edit")
    newer.decision(Decision("c1", "d.txt", "source", 1, winner, loser, as_detected=False))
    assert len(newer.verdict({"d.txt": winner}, applied={"c1"}).lost) == 1  # applied over it


def test_keep_both_has_no_loser():
    led = Ledger()
    a = led.write("smb", "d.txt", b"a", "edit")
    b = led.write("s3", "d.txt", b"b", "edit")
    dec = Decision("c1", "d.txt", "keep_both", 1, a, b, as_detected=True)
    assert dec.loser() is None
    led.decision(dec)
    assert led.verdict({"d.txt": a, "d (ScaiDrive conflict c1).txt": b}, {"c1"}).ok


def test_content_nobody_wrote_is_damage_wherever_it_is_seen():
    led = Ledger()
    whole = led.write("smb", "big.bin", b"x" * 100, "create")
    led.observed("s3", {"big.bin": digest(b"x" * 40)})  # a truncated copy mid-run
    verdict = led.verdict({"big.bin": whole, "other.bin": digest(b"junk")}, applied=set())
    assert len(verdict.damaged) == 2 and not verdict.ok
    assert any(line.startswith("s3:big.bin") for line in verdict.damaged)

