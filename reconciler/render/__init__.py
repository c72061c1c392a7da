"""Pure renderers: spec -> desired resources for each layer. No I/O."""
