"""Accounts, sign-in and the role table of the API (issue 10)."""
