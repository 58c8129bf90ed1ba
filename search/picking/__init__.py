"""The picking side of a search: which trial is best (ranking), and the confirmation of the top
configs with other seeds (confirmation: the statistics; confirm_runs: the Tune run that trains them)."""
