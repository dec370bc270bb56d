"""Shopify's Admin GraphQL API: the client, the documents bulkimg sends, bulk operations and
their results."""
