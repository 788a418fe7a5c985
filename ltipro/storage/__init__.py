"""Storage: the schema, the database engine, queries, and the protocol-state store."""
