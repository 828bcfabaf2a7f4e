"""The crypto floor of ingest: the least a hub that checks signatures and answers signed does.

    python bench/_crypto_floor.py PORT CERT_PEM KEY_PEM PROCESSES

An aiohttp server whose POST handler reads the body, verifies its enveloped signature with
bare signxml (the sender's certificate given, nothing else looked at: no schema, no rules,
no store) and answers 201 with a small CAP Ack signed by bare signxml (RSA-SHA256, exclusive
C14N, the certificate in KeyInfo, as the hub signs). ``PROCESSES`` copies share the port
(SO_REUSEPORT), so it uses every core the machine has without a GIL in the way.

`bench/ingest.py` runs it beside cap-hub in the same run: what cap-hub reaches is compared
with what these two library calls alone allow on this machine at that moment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree
from signxml import XMLSigner, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

ACK = (
    '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>floor-{id}</identifier>'
    "<sender>hub@example.be</sender><sent>2026-11-24T12:00:00+00:00</sent><status>Actual</status>"
    "<msgType>Ack</msgType><scope>Public</scope><references>bench@example.be,x,"
    "2026-11-24T12:00:00+00:00</references></alert>"
)


def app(cert_pem: bytes, key_pem: bytes) -> web.Application:
    # Loaded once, as any server would (loading checks the RSA key: ~40 ms).
    key = load_pem_private_key(key_pem, password=None)
    cert = cert_pem.decode()

    async def post(request: web.Request) -> web.Response:
        body = await request.read()
        XMLVerifier().verify(body, x509_cert=cert)  # raises when it does not hold
        signer = XMLSigner(signature_algorithm=SignatureMethod.RSA_SHA256,
                           digest_algorithm=DigestAlgorithm.SHA256,
                           c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
        ack = etree.fromstring(ACK.format(id=uuid.uuid4().hex).encode())
        signed = signer.sign(ack, key=key, cert=cert)
        return web.Response(status=201, body=etree.tostring(signed, xml_declaration=True, encoding="UTF-8"),
                            content_type="application/cap+xml")

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    application = web.Application(client_max_size=8 * 1024 * 1024)
    application.router.add_post("/cap", post)
    application.router.add_get("/health", health)
    return application


def main() -> None:
    port, cert, key, processes = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    children: list[subprocess.Popen[bytes]] = []
    if os.environ.get("FLOOR_CHILD") != "1":
        env = dict(os.environ, FLOOR_CHILD="1")
        children = [subprocess.Popen([sys.executable, *sys.argv], env=env) for _ in range(processes - 1)]

        def stop(_sig: int, _frame: object) -> None:
            for child in children:
                child.terminate()
            for child in children:
                child.wait()
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stop)
    web.run_app(app(cert.read_bytes(), key.read_bytes()), host="127.0.0.1", port=port, reuse_port=True,
                access_log=None, print=None, handle_signals=not children)


if __name__ == "__main__":
    main()
