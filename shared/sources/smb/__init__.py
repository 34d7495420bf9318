"""The SMB backend on smbprotocol: `source.SmbSource` (sessions, stat, reads), with its listing
(`listing`), owner SIDs (`owners`), pipelined reads (`reading`), small files whole in one
compound (`small_reads`, its requests and the owners' packed by `packed_requests`), atomic
writes (`writing`), the NTSTATUS -> failure class mapping (`ntstatus`), and its connections
(`sessions`), whose messages' headers `framing` packs and reads.

May import: `shared.errors`, `shared.sync.model`.
"""
