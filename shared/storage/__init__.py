"""ScaiDrive's storage as the services see it: one S3 bucket per share (`s3`, the minio SDK;
`multipart`: a multipart upload completed under a condition, which minio's own cannot send).

May import: `shared.errors`, `shared.config`.
"""
