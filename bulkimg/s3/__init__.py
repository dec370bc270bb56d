"""S3 as bulkimg reads it: object keys, the options the layer reads of the settings, the client,
SigV4 presigning, the kept-alive HTTP/1.1 client, ranged GETs, the folder listing and its cost
statistics, the link check and the image index of the bucket."""
