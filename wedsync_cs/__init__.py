"""Composition root of the WedSync customer-success platform: settings and the CLI."""
