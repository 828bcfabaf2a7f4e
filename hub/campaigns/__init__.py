"""Campaigns as their senders see them, pure: what a delivery costs (``cost``), how far a
campaign got (``progress``), its final report (``report``, ``report_html``) and what an
alert would cost before it is sent (``preview``). The store and the HTTP routes feed them."""
