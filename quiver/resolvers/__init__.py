"""The operations behind the schema: plain async functions, one module per domain."""
