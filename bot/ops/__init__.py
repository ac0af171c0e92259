"""Running the service: metrics, access logs, the knowledge-folder watcher, admission under
overload and who is calling behind a reverse proxy."""
