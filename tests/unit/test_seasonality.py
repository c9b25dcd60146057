"""Wedding seasons by country and vendor type."""

import numpy as np

from features.contract import VENDOR_TYPES
from simulator.seasonality import season_table, wedding_profile

MID_JAN, MID_APR, MID_JUL, MID_OCT = 15, 105, 196, 288


def _season(country: str, vendor: str, day: int) -> float:
    return float(season_table([country], np.array([day]))[0, VENDOR_TYPES.index(vendor), 0])


def test_profiles_average_one_and_differ_by_country() -> None:
    for country in ("GB", "US", "AU", "NZ", "ZA", "AR"):
        assert abs(wedding_profile(country).mean() - 1) < 1e-9
    assert np.argmax(wedding_profile("NZ")) in (0, 1, 2)
    assert np.argmax(wedding_profile("GB")) in (5, 6, 7, 8)


def test_season_sign_by_hemisphere() -> None:
    assert _season("GB", "photographer", MID_JUL) > _season("GB", "photographer", MID_JAN) + 0.5
    assert _season("NZ", "photographer", MID_JAN) > _season("NZ", "photographer", MID_JUL) + 0.5
    assert _season("AU", "florist", MID_OCT) > _season("AU", "florist", MID_JUL) + 0.5
    assert _season("AR", "photographer", MID_JAN) > _season("AR", "photographer", MID_JUL)


def test_venues_feel_the_season_months_before_photographers() -> None:
    days = np.arange(365)
    table = season_table(["GB"], days)[0]
    venue_peak = days[np.argmax(table[VENDOR_TYPES.index("venue")])]
    photo_peak = days[np.argmax(table[VENDOR_TYPES.index("photographer")])]
    assert 60 < (photo_peak - venue_peak) % 365 < 200


def test_intensity_is_bounded() -> None:
    table = season_table(["GB", "AU", "ZA"], np.arange(0, 366, 5))
    assert table.min() >= 0 and table.max() <= 1
