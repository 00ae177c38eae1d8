"""HTTP beside GraphQL: the GraphQL view, health checks, and (later) files and uploads."""
