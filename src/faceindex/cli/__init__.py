"""Command-line interface: thin wrappers over the library.

Layout, and why (imports only go down this list, so there is no cycle)::

    main.py          entry point: builds the parser from the command modules, calls
                     ``args.handler(args, ctx)``, maps errors to exit codes
    commands/<group> one module per command group, each with ``register(subparsers)``
    context.py       CliContext: Settings (env + flags), lazy Pipeline/Gallery/KeyRing
    options.py       the flags several commands share (read by the context)
    output.py        every JSON shape and human rendering, errors, progress bars
    exit_codes.py    error class -> exit code, the one table

``main`` knows the command modules only by name (:data:`commands.MODULES`), so adding a
command touches neither ``main`` nor another command. Handlers take the context instead
of building settings, pipelines or galleries themselves: the edge where configuration is
read is one class, resources are closed in one place, and tests inject a context (fake
backends, a loaded pipeline) through ``main(argv, context_factory=...)`` instead of
patching modules. Shared flags live in ``options`` rather than in ``context`` so that
building the parser (every run, ``--help`` included) imports nothing but argparse; a
flag declared there is honoured by :func:`context.apply_args`. Nothing but ``main``
is imported by the console script until a handler runs, which keeps ``--help`` instant.
"""
