"""Default Jinja2 + MJML templates. A site overrides any of them by putting a file
of the same name in its own ``templates/`` folder."""
