"""Training: datasets, models, tuning and the MLflow registry (roadmap step 3)."""
