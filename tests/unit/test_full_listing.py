"""When a SharePoint connector lists its whole library again instead of the changes since its
saved position (`DeltaCursor.full_listing_due`, SCAIDRIVE_FULL_LISTING_DAYS): the one rule the
scanner asks."""
import pytest

from shared.config.settings import Settings
from shared.sync.model import DeltaCursor

WEEK = 7 * 86_400.0
NOW = 1_764_000_000.0
LINK = "https://graph/delta?token=1"


@pytest.mark.parametrize(("cursor", "every", "due"), [
    (DeltaCursor(LINK, {}, NOW - WEEK), WEEK, True),  # a week old: listed in full
    (DeltaCursor(LINK, {}, NOW - WEEK + 1), WEEK, False),  # a second younger: the changes
    (DeltaCursor(LINK, {}, NOW - 100 * WEEK), 0, False),  # 0: never
    (DeltaCursor(LINK, {}, None), WEEK, False),  # age unknown: the store starts the clock
    (DeltaCursor(None, {}, NOW - WEEK), WEEK, False),  # no position: listed in full anyway
])
def test_a_full_listing_is_due_once_the_last_is_as_old_as_the_setting(cursor, every, due):
    assert cursor.full_listing_due(every, NOW) is due


def test_the_default_is_a_week():
    assert Settings.model_fields["full_listing_days"].default == 7
