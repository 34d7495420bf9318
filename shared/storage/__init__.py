"""ScaiDrive's storage as the services see it: one S3 bucket per share (`s3`, the minio SDK;
`multipart`: a multipart upload completed under a condition, which minio's own cannot send;
`bucket_listing`: a bucket's keys with their sizes and etags, without minio's per-object
parsing).

May import: `shared.errors`, `shared.config`.
"""
