"""Supplier-behaviour simulator whose true churn probabilities are known.

It writes a contract folder (``raw/*.parquet``, see ``shared/DATA_CONTRACT.md``) and
``truth.parquet`` with, for every supplier active at each weekly snapshot, the probability that it
cancels within the horizon given everything the simulator knows at that moment.

The generative story
--------------------
*Who signs up.* Suppliers join evenly over the history. Each has a vendor type (photographers are
the most common, then venues and florists), a country (UK, US, Canada, Ireland, Australia, New
Zealand, South Africa, Germany), a subscription tier (starter 19, professional 49, scale 99,
enterprise 249 a month), a base engagement, a proneness to support problems (friction), a price
sensitivity that is highest on the cheapest tier, a payment risk, a card expiry date, a client
intake rate that depends on the vendor type, and its own order and taste for the 8 core features.

*Seasons.* Weddings per month follow the country (UK/US peak June to September; Australia in
spring and autumn; New Zealand in its summer; South Africa from spring to autumn). Each vendor type
feels them at a lead or lag: venues about four months and planners three months before the
weddings, photographers and videographers just after them (editing). Season intensity (0..1)
raises engagement and logins, fills client books and, off-season, raises price-sensitive
suppliers' wish to leave.

*The latent weekly state* (``dynamics.py``): engagement (a log-scale activity level that drifts
back towards a target with noise), a disengaging regime (entered under strain: bad support,
failed payments, off-season price pressure, low engagement, little adoption; some recover),
weeks overdue on a payment, a decaying grievance from bad support experiences and failed
payments, onboarding milestones reached, features adopted, the client book and the tier.
Engagement's target rises with adoption, milestones, the season and the client book, is low in
the first weeks (ramp-up) and drops sharply in the disengaging regime, so engagement visibly
decays in the weeks before most cancellations.

*What happens in a week*, drawn from the state: tickets (more for high-friction suppliers, new
ones and overdue ones) with a satisfaction rating that is often missing and low after a bad
experience; monthly payments on the signup day of month that fail more on risky or expired
cards, with weekly retries; card-expiry notices a month ahead; upgrades (engaged suppliers with
big books) and downgrades (price-sensitive or disengaging ones); refunds after some complaints;
milestones in typical order (account set-up first, then the first form, journey and automation;
first client and ten clients when the book gets there); new features adopted over tenure; new
clients, more in season.

*Daily observables* (``emission.py``): logins are Poisson with a rate set by engagement, the
weekday and the season (at least one on the signup day); session minutes follow logins; on each
active day each adopted feature is used with the supplier's own propensity; the client book is
written when it changes, with the share of clients active in 30 days rising in season.

*Churn.* The weekly hazard rises steeply with the weeks spent disengaging, and with low engagement,
grievance, overdue payments (four weeks overdue is almost certain involuntary churn), off-season
price pressure on expensive plans, a stalled onboarding in the first quarter and a small client
book. A cancellation falls at a uniform time within its week, with a stated reason (or none).
Monthly churn lands in the 2-6 % band.

*Truth* (``truth.py``): at each weekly snapshot the exact latent state of every active supplier is
copied into many Monte Carlo paths and rolled forward with the same transition and hazard, with
fresh randomness; the mean over paths of the probability of cancelling within the horizon is
``p_true`` (with its standard error ``p_true_se``), and ``label`` is what actually happened. It is
the ceiling for any model that sees only data up to ``as_of``: a model cannot know the latent
state exactly, only infer it from the observable tables.

*Options* (``SimulationConfig``; all off by default, and off the output is byte-for-byte what it
was without them, because their randomness comes from a stream of its own). They make exports
shaped unlike the default, so that the churn model can be tested on data it was not tuned on.
``history_start_days`` cuts the export's history: the simulation runs over all days as usual, then
event rows dated before the history start, suppliers who cancelled before it (with all their
rows) and truth rows before it are left out, while the remaining suppliers keep their true
signup, as in a real export whose retention or a migration dropped the older history of older
accounts. ``yearly_share`` puts that share of suppliers on a yearly plan, billed every 365 days
from signup at ten monthly prices (failed payments and retries as for monthly plans), and with
``cancel_at_renewal`` a supplier can cancel only on its renewal day: in the renewal week it leaves
with the probability accumulated over the billing period, ``1 - (1 - h) ** (cycle_days / 7)``
for the usual weekly hazard ``h``, and never in between. ``feature_effects`` makes the core
features adopted signal loyalty or its opposite: payments, journey automation and client
management lower the hazard, analytics and the document library raise it (the intercept is
re-centred so monthly churn stays in the band), and suppliers in the disengaging regime use the
document library and analytics more (exporting their files, checking what the tool brought them)
while the rest of their use fades. The hazard rules live in ``weekly_churn_hazard``, so the truth
rolls them forward and stays exact; cancelling at renewal also places the cancellation on the
renewal day, which the truth accounts for in a horizon's last partial week.
``interventions`` (an :class:`~simulator.interventions.InterventionPolicy`, e.g. from
``experiments/sim_interventions.yaml``) applies a customer-success policy inside the simulation:
rules over what the app can see (days since the last login, recent logins and features used,
an unresolved failed payment, bad ratings, tenure, plan) make intervention types due under a
per-type cap; a held-out share of suppliers receives nothing; a delivered contact adds its
true effect (by type, tier at signup and vendor type; 0 for non-responders) to a decaying lift
of engagement's target and of the hazard's log-odds. Delivered contacts fill
``interventions_log``; ``truth_interventions.parquet`` (per supplier: group, responder, true
effect of each type) and ``truth_intervention_contacts.parquet`` (every contact decided,
withheld ones of the held-out group included, with the true probability of cancelling within
30 and 60 days if that contact is sent and if it is not) join the truth. Its randomness is a
stream of its own too, so with every effect 0 only ``interventions_log`` differs from the run
without it.

Everything is vectorised over suppliers (numpy; no Python loop over suppliers) and deterministic
for a seed.
"""

from simulator.interventions import InterventionPolicy, load_policy
from simulator.run import SimulationConfig, SimulationSummary, simulate

__all__ = [
    "InterventionPolicy",
    "SimulationConfig",
    "SimulationSummary",
    "load_policy",
    "simulate",
]
