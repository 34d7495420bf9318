"""The progress the API shows for a run in each phase (services/api/routes/connectors.py)."""
from __future__ import annotations

from services.api.routes.connectors import live_progress


def test_while_listing_the_files_found_so_far_and_no_total_yet():
    p = live_progress({"phase": "scanning", "started_at": "100", "jobs_total": "-1",
                       "files_listed": "1500", "bytes_listed": "9000"}, now=110)
    assert (p["files_listed"], p["bytes_listed"], p["files_total"], p["percent"],
            p["eta_s"]) == (1500, 9000, None, None, None)


def test_while_transferring_a_percentage_a_rate_and_the_time_left():
    p = live_progress({"phase": "transferring", "started_at": "100", "jobs_total": "200",
                       "jobs_done": "50", "bytes_total": "4000", "bytes_transferred": "1000",
                       "files_listed": "300", "files_scanned": "300"}, now=110)
    assert (p["files_total"], p["percent"], p["bytes_per_s"], p["eta_s"]) == (200, 25.0, 100, 30.0)


def test_without_bytes_to_send_the_time_left_follows_the_changes():
    p = live_progress({"phase": "transferring", "started_at": "100", "jobs_total": "40",
                       "jobs_done": "10", "bytes_total": "0"}, now=120)
    assert (p["percent"], p["eta_s"]) == (25.0, 60.0)


def test_finished_runs_are_whole_and_have_no_time_left():
    p = live_progress({"phase": "finished", "started_at": "100", "finished_at": "130",
                       "jobs_total": "0", "jobs_done": "0"})
    assert (p["percent"], p["eta_s"], p["files_total"]) == (100.0, None, 0)
