"""The pure domain: models, policy, the decision engine, routing, acts and their input rules, the card model, errors.

No AWS, no chat platform, no I/O."""
