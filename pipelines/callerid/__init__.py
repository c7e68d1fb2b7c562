"""Outbound caller-ID branding stream: branded display + KakaoTalk notice requests."""
