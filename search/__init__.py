"""cxr-tune searches: one entry script per paper's search space, the shared runner, export."""
