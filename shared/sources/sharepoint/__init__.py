"""The SharePoint Online backend on msgraph-sdk and azure-identity: `source.SharePointSource`,
the Graph session with its throttling and credentials (`graph`), Graph's errors mapped to
failure classes (`graph_errors`), streamed downloads (`reading`) and delta paths (`delta`).

May import: `shared.errors`, `shared.sync.model`.
"""
