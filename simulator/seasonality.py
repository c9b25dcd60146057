"""Wedding seasons: how busy a vendor type is on a given day, by country.

Wedding counts per month differ by country (the UK and US peak in summer, Australia in spring
and autumn, New Zealand in its summer, South Africa from spring to autumn). Vendors feel the
season at a lead or lag: venues and planners are busiest months before the weddings (bookings
and planning), photographers and videographers just after them (editing and delivery).
"""

from __future__ import annotations

import numpy as np

from features.contract import SOUTHERN_HEMISPHERE_COUNTRIES, VENDOR_TYPES

# Relative weddings per month (Jan..Dec).
_NORTH = np.array([0.35, 0.4, 0.55, 0.75, 1.1, 1.45, 1.5, 1.55, 1.5, 1.15, 0.6, 0.55])
_PROFILES: dict[str, np.ndarray] = {
    "AU": np.array([0.9, 1.0, 1.35, 1.35, 0.95, 0.55, 0.45, 0.55, 0.95, 1.4, 1.5, 1.0]),
    "NZ": np.array([1.5, 1.55, 1.45, 1.05, 0.6, 0.4, 0.35, 0.45, 0.65, 0.9, 1.2, 1.45]),
    "ZA": np.array([1.1, 1.05, 1.2, 1.0, 0.7, 0.5, 0.45, 0.55, 1.0, 1.25, 1.3, 1.3]),
}
_SOUTH = np.roll(_NORTH, 6)

# Lead (negative, months before the weddings) or lag of activity, and how strongly seasonal.
VENDOR_LEAD_MONTHS: dict[str, float] = {
    "photographer": 0.7,
    "videographer": 1.0,
    "venue": -4.0,
    "florist": -0.3,
    "caterer": -0.5,
    "planner": -3.0,
    "dj_band": 0.0,
    "baker": -0.2,
    "hair_makeup": 0.0,
    "stationer": -2.0,
    "other": 0.0,
}
VENDOR_AMPLITUDE: dict[str, float] = {
    "photographer": 0.95,
    "videographer": 0.9,
    "venue": 0.6,
    "florist": 0.9,
    "caterer": 0.8,
    "planner": 0.5,
    "dj_band": 0.85,
    "baker": 0.8,
    "hair_makeup": 0.95,
    "stationer": 0.6,
    "other": 0.4,
}


def wedding_profile(country: str) -> np.ndarray:
    """Relative weddings per month for a country (12 values, mean 1)."""
    base = _PROFILES.get(country, _SOUTH if country in SOUTHERN_HEMISPHERE_COUNTRIES else _NORTH)
    return base / base.mean()


def season_table(countries: list[str], day_of_year: np.ndarray) -> np.ndarray:
    """Season intensity in [0, 1] per (country, vendor type, day of year).

    Returns:
        Array of shape (len(countries), len(VENDOR_TYPES), len(day_of_year)).
    """
    month_mid = (np.arange(12) + 0.5) * 365.25 / 12
    out = np.empty((len(countries), len(VENDOR_TYPES), len(day_of_year)))
    for i, country in enumerate(countries):
        profile = wedding_profile(country)
        for j, vendor in enumerate(VENDOR_TYPES):
            # Activity at day d follows weddings at d - lead (a lead < 0 looks ahead).
            shifted = (day_of_year - VENDOR_LEAD_MONTHS[vendor] * 365.25 / 12) % 365.25
            curve = np.interp(shifted, month_mid, profile, period=365.25)
            lo, hi = profile.min(), profile.max()
            out[i, j] = 0.5 + VENDOR_AMPLITUDE[vendor] * ((curve - lo) / (hi - lo) - 0.5)
    return np.clip(out, 0.0, 1.0)
