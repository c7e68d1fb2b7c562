"""The recording store: encrypted audio files (AES-256-GCM), their spool while a call runs,
the audit trail of access and deletion, and a replay of the audio topic for lost spools.

Nothing here logs or returns audio except :func:`~connectors.recordings.crypto.open_sealed`,
which only an authorised, audited access reaches (``pipelines/recording/access.py``).
"""
