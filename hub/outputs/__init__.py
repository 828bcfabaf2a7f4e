"""Outputs: turning planned deliveries into messages on each channel.

Pure logic lives in :mod:`hub.outputs.gsm` (GSM 03.38 / UCS-2 text and parts),
:mod:`hub.outputs.sms_text` (the SMS text of one ``<info>``) and
:mod:`hub.outputs.ratelimit` (token buckets with an injected clock); providers do the I/O.
"""
