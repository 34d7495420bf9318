"""The SharePoint Online backend on msgraph-sdk and azure-identity: `source.SharePointSource`,
the Graph session with its credentials (`graph`) and the throttling waits and hold its calls
keep (`throttling`), Graph's errors mapped to
failure classes (`graph_errors`), streamed downloads (`reading`), delta paths (`delta`) and the
download URLs of a folder's files read a page of siblings at a time (`folder_cache`), the
delta query followed (`delta_feed`) and the listing built from it (`delta_listing`).

May import: `shared.errors`, `shared.sync.model`.
"""
