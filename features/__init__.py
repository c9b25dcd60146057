"""Raw contract tables -> validated, transformed supplier features.

Holds the raw-data contract (``contract``), its validator (``validation``), the reader every
other package uses to load raw tables (``raw_reader``) and the supplier simulator
(``simulator``) that writes contract folders with known churn probabilities.
"""
