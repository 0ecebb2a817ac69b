"""newsletters: blog articles in, consenting subscribers' inboxes out.

The pipeline reads articles (``newsletters.articles``), assembles an issue
(``newsletters.issues``), renders it once (``newsletters.render``), fills in each
recipient's values (``newsletters.personalize``) and hands the messages to a
transport (``newsletters.delivery``). Who may receive anything is decided by the
``recipients`` package alone.
"""

__version__ = "0.1.0"
