"""Reference solutions, kept out of the learner's way (open only after trying)."""
