"""RabbitMQ through aio-pika: queues, confirmed publishing, idempotent consuming with bounded
retries and dead letters (`broker`); the identity and transfer stages' shared, sharded lanes
(`lanes`) and a held connector's work set aside (`parking`); another cluster node when one
dies (`failover`); long work claimed and acked early (`claims`, kept by
the store through a protocol); what both share to publish a message again (`redelivery`);
outages of a dependency told apart from a file's own failure (`outages`).

May import: `shared.errors`, `shared.contracts`, `shared.config`, `shared.observability`.
"""
