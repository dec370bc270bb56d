"""bulkimg: product images from S3 onto Shopify with bulk operations."""
