"""Course meetings: the model, the rules, storage and the service pages use."""
