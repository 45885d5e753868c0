"""HTTP API and web console over the centre's storage: trails, who passed here, live alerts
(server-sent events), watchlist, gateways. Built in :func:`api.app.create_app`; nothing
happens at import time. Every query about people's movements is audited."""
