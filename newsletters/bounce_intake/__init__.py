"""How bounces and complaints reach us after a send: a bounce mailbox, or a relay's webhook.

This package only *receives*: ``mailbox`` hands over raw messages (for the bounce
reader in ``newsletters.bounces`` to understand), ``webhooks`` turns a relay's
verified post into ``BounceEvent``s, and ``web`` puts the webhooks on HTTP routes.
Applying either to the subscriber list is someone else's step.
"""
