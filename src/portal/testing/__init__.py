"""Test support shared by tests/ and e2e/: a database made for the run, factories."""
