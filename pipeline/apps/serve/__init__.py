"""`vapipe serve`: a long-running camera service with a config file, an HTTP API, Prometheus
metrics and MQTT events."""
