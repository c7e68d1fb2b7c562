"""Call tracker stream: call events → per-call state → one summary per finished call."""
