"""Built-in run-event observers (filled by the training issue)."""
