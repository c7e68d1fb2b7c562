"""The timeout stream: the 20-minute rule for malicious calls (rule: ``pipelines.core.timeout``)."""
