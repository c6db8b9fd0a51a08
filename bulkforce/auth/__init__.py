"""Logins: users, connected apps, sessions (issue #6). The HTTP fronts live in http/login.py."""
