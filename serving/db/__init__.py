"""The operational database: tables (:mod:`serving.db.models`) and their migrations
(:mod:`serving.db.migrate`)."""
