"""Monitoring: drift and outcome reports (roadmap step 5)."""
