"""Feast definitions and store access: entity ``supplier``, one feature view per feature family,
and the versioned feature services (``churn_v1``, ``churn_v2``, ``churn_v3``, ``health_v1``)
that training and serving read.

Definitions are built in code from :mod:`features.catalog` and applied from Python (no
``feast apply`` import scan); the repo config is generated from the settings.
"""
