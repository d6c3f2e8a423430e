"""The configuration: one TOML file, validated at load, every problem reported at once.

    models.py    the tables, what every key means (pydantic: also the schema and the reference page)
    rules.py     a platform's rule tables, [platforms.NAME.rules]
    base.py      the strict base of every table, and the checks tables share
    loading.py   find, read and validate the file: load_config
    messages.py  pydantic's errors as one line per problem, with its key path and a did-you-mean
    renames.py   keys renamed since 0.1.0: the old name still loads, with a warning
    secrets.py   Secret, and reading a password from the environment, a file, a credential or the keyring
    presets.py   built-in agency presets, laid under the user's platform tables
    starter.py   the file `stockbridge init` writes
    docs.py      the JSON Schema and docs/configuration.md, generated from the models

Each name is imported from the module that defines it; this package re-exports nothing, so
``stockbridge.config.secrets`` (which transports and log sinks need) loads no model.
"""
