"""Randomised storms against the bridge and the WSGI adapter (``make stress``); not collected by pytest."""
