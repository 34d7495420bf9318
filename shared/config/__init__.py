"""What an admin configures and how it is kept safe: service settings (`settings`, from the
environment), connectors and their validation (`connectors`), secrets encrypted at rest
(`secrets`), and the identity-mapping rules a connector names (`identity_mapping`).

May import: `shared.errors`, `shared.contracts`, `shared.sync`.
"""
