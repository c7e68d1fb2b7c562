"""The recording-consent and recording-assembly stream (issue 5)."""
