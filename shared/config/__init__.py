"""What an admin configures and how it is kept safe: service settings (`settings`, from the
environment), connectors and their validation (`connector_model`), secrets encrypted at rest
(`secrets`), the identity-mapping rules a connector names (`identity_mapping`) and its
directory (`ldap_directory`), Active Directory logon names and principals that are nobody
(`active_directory`), and sync windows and bandwidth timetables (`sync_windows`).

May import: `shared.errors`, `shared.contracts`, `shared.sync`.
"""
