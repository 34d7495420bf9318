"""Source backends behind one protocol (`base.Source`): SMB (`smb/`) and SharePoint Online
through Microsoft Graph (`sharepoint/`), and `factory.open_source`, which builds one from a
stored connector. Each backend passes the conformance suite in tests/conformance.

May import: `shared.errors`, `shared.sync` (the listing model), `shared.config` (the factory).
"""
