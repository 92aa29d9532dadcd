"""The web console (``/console``): server-rendered pages over the same service and store functions the JSON
API uses, signed in with an API key and kept in a signed cookie that names the key but never holds it.

``session`` is the cookie and the CSRF token, ``web`` the guard every page goes through and the templates,
one module per section for the pages, ``portal`` the HTML face of portal links, ``routes`` the route list
``gateway.app`` mounts. Nothing here writes SQL: a page reads through ``gateway.store`` and changes through
the services (``gateway.sources``, ``gateway.subscriptions``, ``gateway.outbox``…), so one tenant sees what
its API key would see, and nothing else.
"""
