"""Situational ringback stream: inbound calls hear lunch / after-hours / holiday / notices."""
