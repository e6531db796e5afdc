"""Model formats in; plan, trace and schedule exports out."""
