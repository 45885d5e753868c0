"""The centre's MQTT ingest: sightings in, exactly once into storage, receipts back out.

At-least-once delivery (MQTT QoS 1, gateways that republish what is not receipted) becomes
exactly-once storage through three rules: a message is acknowledged only after the batch that
holds it has committed; a batch is deduplicated before it is written and the database merges on
the sighting id; and a receipt names only what is committed.

Modules: :mod:`ingest.consumer` (the paho-mqtt client: sessions, subscriptions, manual acks,
protocol fallback; the broker URL it is given is parsed by :mod:`pak.broker_url`),
:mod:`ingest.validate` (payload checks and dead letters), :mod:`ingest.batcher` (batches,
commits, retries), :mod:`ingest.receipts`, :mod:`ingest.hooks` (where the alert engine plugs
in), :mod:`ingest.metrics` and :mod:`ingest.pipeline`, which wires them together.
"""
