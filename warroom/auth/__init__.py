"""Identities and the audit log: users, API tokens, web sessions, alert integrations.

``crypto`` makes and checks secrets, ``store`` keeps them in the database
(tables in ``warroom.models.tables``), ``cli`` is ``warroom admin ...``. The
rules (roles, what a valid id or password is) are pure functions in
``warroom.models.access``; the HTTP side is ``warroom.api.auth``.
"""
