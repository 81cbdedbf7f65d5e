"""Core: what every stage shares. Configs and their one loader, the model backends, the run folder and manifest,
atomic file writes, the progress bar, the text checks and the system prompt variants."""
