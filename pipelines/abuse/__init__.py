"""The abuse-detection stream: live audio → utterances → ASR → classifier → warn, then end."""
