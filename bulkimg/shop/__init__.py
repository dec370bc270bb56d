"""The build against the shop as it is: resolving each group (create, append, keep), which
media are bulkimg's (adoption, state), variant images and the canary."""
