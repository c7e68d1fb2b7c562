"""Outbound notification connectors: carrier branded-call display and KakaoTalk AlimTalk.

Both are pluggable HTTP services an operator points CallGuard at (:mod:`.http`); the request
bodies are validated against JSON Schemas in ``schemas/json/ext/`` before they leave.
"""
