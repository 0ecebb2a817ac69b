"""Subscribers and their consent: the only answer to "who may receive this issue"."""
