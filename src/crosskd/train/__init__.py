"""Training and evaluation: the trainer, run folders, checkpoints to resume, reports."""
