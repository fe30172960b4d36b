"""Privacy: per-account retention of recordings, caller numbers and form fields, and the erasure
of one person's personal data on request. See ``service.py`` for what each does to which rows."""
