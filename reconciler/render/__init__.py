"""Pure renderers: spec -> desired resources for each layer. No I/O (but review_dir, the
rule of where ``render --dir`` may write, resolves that directory's path)."""
