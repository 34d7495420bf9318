"""ScaiDrive's storage as the services see it: one S3 bucket per share (`s3`, the minio SDK).

May import: `shared.errors`, `shared.config`.
"""
