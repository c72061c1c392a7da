"""spec -> desired resources -> diff against live -> plan -> apply.

``render_*`` and ``diff`` are pure; only providers touch live systems, and only ``apply`` writes.
"""
