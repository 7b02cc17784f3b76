"""``allocffi run``: whole programs under each allocator by LD_PRELOAD, with a preload proof."""
