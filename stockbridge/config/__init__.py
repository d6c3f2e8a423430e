"""The configuration: models, loading, presets, secrets, the starter file and the generated docs."""
