"""`cap-hub serve`: run the hub until interrupted (SIGINT or SIGTERM)."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import sys
from pathlib import Path

from aiohttp import web

from hub.api.app import create_app
from hub.config import Settings
from hub.runtime import tune_gc
from hub.wiring import ALL_ROLES, Hub

log = logging.getLogger(__name__)


def _tls(settings: Settings) -> ssl.SSLContext | None:
    http = settings.http
    if not (http.tls_cert or http.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(http.tls_cert, http.tls_key)
    return context


async def run(settings: Settings, data_dir: Path, host: str, port: int,
              roles: frozenset[str] = ALL_ROLES) -> None:
    """Run the hub's stages in ``roles`` until SIGINT or SIGTERM; HTTP only with "api"."""
    hub = await Hub.start(settings, data_dir, roles=roles)
    if hub.created_keys is not None:
        print(f"created the hub's signing key and certificate in {hub.created_keys}", flush=True)
    if settings.simulation.enabled:
        print("SIMULATION: every campaign runs on simulator providers; nothing is sent", flush=True)
    # Signals are caught from the start, so a stop during start-up still cleans up.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(create_app(hub), access_log=None)
    try:
        if "api" in roles:
            await runner.setup()
            tls = _tls(settings)
            site = web.TCPSite(runner, host, port, ssl_context=tls, reuse_address=True)
            await site.start()
            scheme = "https" if tls else "http"
            print(f"cap-hub listening on {scheme}://{host}:{port} (data in {data_dir})", flush=True)
        else:
            print(f"cap-hub {', '.join(sorted(roles))} running (data in {data_dir})", flush=True)
        tune_gc()  # what start-up made lives as long as the process
        await stop.wait()
        print("cap-hub stopping", file=sys.stderr, flush=True)
    finally:
        await runner.cleanup()
        await hub.stop()
