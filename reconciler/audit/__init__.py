"""``sipctl audit``: pure analysis (the live dialplan's reachability, probe verdicts, the report).

``providers/asterisk`` and ``providers/sip_attack.py`` gather; ``run.py`` puts it together.
"""
