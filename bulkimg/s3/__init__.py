"""S3 as bulkimg reads it: object keys, the client and its settings, SigV4 presigning, the
kept-alive HTTP/1.1 client, ranged GETs, the link check and the image index of the bucket."""
