"""Factories and helpers shared by the test suites of every app."""
