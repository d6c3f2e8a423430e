"""Fixtures: real FTP/FTPS/SFTP servers on 127.0.0.1 (filled in by the transports work)."""
