"""``stickypi demo``: the platform on its own synthetic sample (:mod:`.run`), CPU-sized recipes (:mod:`.recipes`)."""
