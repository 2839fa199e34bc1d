"""Real services for the tests: a throwaway MariaDB server, gunicorn, free ports."""
