"""The scheduling side of a search: how configs are proposed (proposals), how trials are stopped,
retried and resumed (trial_state, stopping, oom_retry, replicas), and what each trial gets
(resources, packing)."""
