"""Outputs: turning planned deliveries into messages on each channel.

Pure logic: :mod:`hub.outputs.gsm` (GSM 03.38 / UCS-2 text and parts),
:mod:`hub.outputs.sms_text` (the SMS text of one ``<info>``), :mod:`hub.outputs.email_render`
(the MIME message of one ``<info>``) and :mod:`hub.outputs.ratelimit` (token buckets with an
injected clock). Providers do the I/O: :mod:`hub.outputs.smpp` (SMPP 3.4 to an SMSC) and
:mod:`hub.outputs.email_smtp` (SMTP, and a simulator that sends nothing).
"""
