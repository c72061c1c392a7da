"""The user's documentation, shipped in the wheel as ``sipctl.docs`` (read by ``sipctl docs``).

A package, not only a directory of Markdown: an editable install finds a mapped directory only
through its ``__init__.py``. The site leaves this file out (mkdocs.yml, exclude_docs)."""
