"""The HTTP edge: aiohttp routes; no CAP rules and no SQL here."""
