"""The Asterisk provider: its files, its CLI (``asterisk -rx``), and in-place edits of the
admin's files."""
