"""A hoster's fleet on Temporal: every domain reconciled by a durable workflow.

The CLI's engine, locks and safety limits run inside Temporal activities; Temporal provides
what a queue of our own would otherwise have to: one workflow per domain (the domain is its
id, so a second change is signalled into the running one, never run beside it), retries on
another worker when one dies, task queues per PBX host and per DNS provider (the latter
rate-limited by the server), schedules for the drift sweep, and the history that says which
domains are converged.

- ``model``: what travels through a workflow's history (spec text, plans, verdicts; never a
  secret) and how a spec maps to its task queues; no Temporal import.
- ``config``: the fleet configuration file (address, queues' rate limits, the sweep).
- ``hosting``: a hosting directory as units (a host file with its customers), and a
  worker's private copy of a unit's files.
- ``activities``: plan, apply and verify of one domain's layers, on a worker.
- ``workflows``: the domain workflow and the drift sweep (deterministic, sandboxed).
- ``client``: sync, approve, status and the schedule, as a portal or the CLI calls them.
- ``worker``: a worker process serving ``pbx:HOST`` and ``dns:PROVIDER`` queues.

Everything here needs the ``fleet`` extra (``temporalio``) and is imported only by
``sipctl fleet``.
"""
