"""Serving: the BentoML service, scorer and intervention engine (roadmap step 4)."""
