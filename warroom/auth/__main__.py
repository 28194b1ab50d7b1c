"""``python -m warroom.auth ...``: the admin CLI on its own (the same as ``warroom admin ...``)."""

from warroom.auth.cli import main

main()
