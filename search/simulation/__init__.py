"""Searches over recorded curves: the table format (table.py) and the trainable that reads a table
instead of training (trainable.py), so the real runner, scheduler, searcher and tracking can be run
and measured at any scale in minutes (`--simulate TABLE`)."""
