"""RabbitMQ through aio-pika: queues, confirmed publishing, idempotent consuming with bounded
retries and dead letters (`broker`); long work claimed in Redis and acked early (`claims`);
outages of a dependency told apart from a file's own failure (`outages`).

May import: `shared.errors`, `shared.contracts`, `shared.config`, `shared.observability`.
"""
