"""The voice channel: the spoken script (SSML), speech (TTS), SIP calls and the voice worker."""
