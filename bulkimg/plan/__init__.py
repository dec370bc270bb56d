"""From catalog groups and S3 images to what Shopify should hold: the group plan (spec rules),
the productSet lines, what changed since the last night, and names on Shopify."""
