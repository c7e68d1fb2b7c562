"""Masking audit stream: outbound CDRs must present an office number."""
