"""Running sipctl from pipelines: locks, guarded apply, drift, import, many domains."""
