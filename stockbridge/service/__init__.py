"""Running it: ``once``, the ``run`` daemon, systemd notify, alerts, and unit installation."""
