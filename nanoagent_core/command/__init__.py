"""The ``nanoagent`` command's subcommands, one module each (or one per small group).

Each module has ``add_parser(sub, common)``, which adds its subparser, and
``async def run(location, args) -> int``, which does it; ``nanoagent_core.cli`` lists them in
``COMMANDS``, parses the line and dispatches. What the commands print for humans and their exit
statuses are in ``output``; argument types shared by several commands are in ``arguments``.
"""
