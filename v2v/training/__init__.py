"""Training: the objective (:mod:`.objective`), the loop and its rollouts (:mod:`.loop`), the clip-length schedule
(:mod:`.schedule`), resumable runs (:mod:`.resume`), moving averages (:mod:`.ema`), the feature bank
(:mod:`.feature_bank`) and DDP helpers (:mod:`.distributed`). Checkpoint files are :mod:`v2v.io.checkpoint`'s."""
